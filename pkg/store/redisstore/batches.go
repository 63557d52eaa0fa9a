package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/store"
)

// AppendBatches applies one planning step if the run is running or paused,
// its planning is not done and its PlanCursor equals step.From; otherwise it
// returns an error matching store.ErrConflict and creates nothing. The new
// batches are pending (enqueued when step.Enqueue) and numbered after the
// run's existing ones.
func (s *Store) AppendBatches(ctx context.Context, runID int64, step store.PlanStep) ([]store.Batch, error) {
	op := fmt.Sprintf("append %d batches to run %d", len(step.Batches), runID)
	if runID <= 0 {
		return nil, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	if err := step.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	now := s.now()
	args := make([]any, 0, 5+3*len(step.Batches))
	args = append(args, runID, step.From, step.To, boolArg(step.Done), boolArg(step.Enqueue))
	for _, kr := range step.Batches {
		args = append(args, kr.Lo, kr.Hi, kr.Size)
	}
	_, reply, err := s.evalAt(ctx, now, appendBatchesScript, op, args...)
	if err != nil {
		return nil, err
	}
	first, ok := reply[0].(int64)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected script reply %v", op, reply)
	}
	created := time.UnixMicro(now.UnixMicro()).UTC()
	state, enqueuedAt := store.BatchPending, (*time.Time)(nil)
	if step.Enqueue {
		state, enqueuedAt = store.BatchEnqueued, &created
	}
	out := make([]store.Batch, len(step.Batches))
	for i, kr := range step.Batches {
		out[i] = store.Batch{
			RunID: runID, Seq: first + int64(i), State: state,
			Lo: kr.Lo, Hi: kr.Hi, Size: kr.Size, CreatedAt: created, UpdatedAt: created, EnqueuedAt: enqueuedAt,
		}
	}
	return out, nil
}

// GetBatch returns one batch, or an error matching store.ErrNotFound.
func (s *Store) GetBatch(ctx context.Context, runID, seq int64) (store.Batch, error) {
	op := "get batch " + store.BatchID(runID, seq)
	if runID <= 0 || seq <= 0 {
		return store.Batch{}, fmt.Errorf("%s: batch %w", op, store.ErrNotFound)
	}
	h, err := s.client.HGetAll(ctx, s.batchKey(runID, seq)).Result()
	if err != nil {
		return store.Batch{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) == 0 {
		return store.Batch{}, fmt.Errorf("%s: batch %w", op, store.ErrNotFound)
	}
	return decodeBatch(runID, seq, h)
}

// ListBatches returns a run's batches in Seq order, filtered by state, with
// keyset pagination; several states are merged from their indexes.
func (s *Store) ListBatches(ctx context.Context, runID int64, f store.BatchFilter) (store.Page[store.Batch], error) {
	op := fmt.Sprintf("list batches of run %d", runID)
	if err := f.Validate(); err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("%s: %w", op, err)
	}
	limit, _ := store.NormalizeLimit(f.Limit)
	after, hasAfter, _ := store.DecodeCursor(f.Cursor)
	if runID <= 0 {
		return store.Page[store.Batch]{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	n, err := s.client.Exists(ctx, s.runKey(runID)).Result()
	if err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return store.Page[store.Batch]{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	keys := []string{s.runKey(runID) + ":batches"}
	states := map[store.BatchState]bool{}
	if len(f.States) > 0 {
		keys = keys[:0]
		for _, st := range f.States {
			if !states[st] {
				states[st] = true
				keys = append(keys, s.runKey(runID)+":bstate:"+string(st))
			}
		}
	}
	l := listing[store.Batch]{
		keys: keys, after: after, hasAfter: hasAfter, limit: limit,
		load: func(ctx context.Context, seqs []int64) ([]store.Batch, error) {
			return s.loadBatches(ctx, runID, seqs)
		},
		match: func(b store.Batch) bool { return len(states) == 0 || states[b.State] },
		key:   func(b store.Batch) int64 { return b.Seq },
	}
	p, err := l.page(ctx, s.client)
	if err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("%s: %w", op, err)
	}
	return p, nil
}

func (s *Store) loadBatches(ctx context.Context, runID int64, seqs []int64) ([]store.Batch, error) {
	keys := make([]string, len(seqs))
	for i, seq := range seqs {
		keys[i] = s.batchKey(runID, seq)
	}
	hs, err := hashes(ctx, s.client, keys)
	if err != nil {
		return nil, err
	}
	out := make([]store.Batch, 0, len(hs))
	for i, h := range hs {
		if h == nil {
			continue
		}
		b, err := decodeBatch(runID, seqs[i], h)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// batchOp runs a script on batch runID/seq that replies with the batch.
func (s *Store) batchOp(ctx context.Context, op string, runID, seq int64, sc *redis.Script, args ...any) (store.Batch, error) {
	return s.batchOpAt(ctx, s.now(), op, runID, seq, sc, args...)
}

func (s *Store) batchOpAt(ctx context.Context, now time.Time, op string, runID, seq int64, sc *redis.Script, args ...any) (store.Batch, error) {
	if runID <= 0 || seq <= 0 {
		return store.Batch{}, fmt.Errorf("%s: batch %w", op, store.ErrNotFound)
	}
	_, reply, err := s.evalAt(ctx, now, sc, op, append([]any{runID, seq}, args...)...)
	if err != nil {
		return store.Batch{}, err
	}
	return decodeBatch(runID, seq, pairs(reply))
}

// EnqueueBatch moves a pending batch to enqueued and sets EnqueuedAt; from
// any other state it is a *store.TransitionError.
func (s *Store) EnqueueBatch(ctx context.Context, runID, seq int64) (store.Batch, error) {
	return s.batchOp(ctx, "enqueue batch "+store.BatchID(runID, seq), runID, seq, enqueueBatchScript)
}

// ClaimBatch starts an attempt at a batch of a running run: a pending,
// enqueued or failed batch, or a running one whose lease has expired by the
// store's clock, becomes running under c. Otherwise the error matches, in
// this order, store.ErrNotFound, store.ErrBatchFinished,
// store.ErrRunNotRunning or store.ErrBatchClaimed.
func (s *Store) ClaimBatch(ctx context.Context, runID, seq int64, c store.Claim) (store.Batch, error) {
	op := "claim batch " + store.BatchID(runID, seq)
	if err := c.Validate(); err != nil {
		return store.Batch{}, fmt.Errorf("%s: %w", op, err)
	}
	now := s.now()
	return s.batchOpAt(ctx, now, op, runID, seq, claimBatchScript, c.Worker, c.Token, leaseEnd(now, c.Lease))
}

// ExtendClaim pushes the lease of a running batch claimed with token to
// now+lease; store.ErrStaleClaim if that claim is not the batch's current
// one.
func (s *Store) ExtendClaim(ctx context.Context, runID, seq int64, token string, lease time.Duration) (store.Batch, error) {
	op := "extend claim on batch " + store.BatchID(runID, seq)
	if lease <= 0 {
		return store.Batch{}, fmt.Errorf("%s: %w", op, &store.ArgumentError{Field: "lease", Message: fmt.Sprintf("must be positive, got %s", lease)})
	}
	now := s.now()
	return s.batchOpAt(ctx, now, op, runID, seq, extendClaimScript, token, leaseEnd(now, lease))
}

// CompleteBatch marks the batch succeeded with r if token holds its claim,
// and adds r's row counts to the run, atomically. Otherwise the error
// matches store.ErrBatchFinished or store.ErrStaleClaim.
func (s *Store) CompleteBatch(ctx context.Context, runID, seq int64, token string, r store.Result) (store.Batch, error) {
	op := "complete batch " + store.BatchID(runID, seq)
	if err := r.Validate(); err != nil {
		return store.Batch{}, fmt.Errorf("%s: %w", op, err)
	}
	return s.batchOp(ctx, op, runID, seq, completeBatchScript, token, r.RowsRead, r.RowsWritten, r.RowsSkipped, int64(r.Duration))
}

// FailBatch ends the attempt holding token with an error: the batch becomes
// failed (f.Final) or enqueued for another attempt. Errors as CompleteBatch.
func (s *Store) FailBatch(ctx context.Context, runID, seq int64, token string, f store.Failure) (store.Batch, error) {
	op := "fail batch " + store.BatchID(runID, seq)
	return s.batchOp(ctx, op, runID, seq, failBatchScript, token, f.Message, f.Stack, boolArg(f.Final), int64(f.Duration))
}

// RetryBatches moves failed batches of the run back to pending (all of them
// when seq is nil, else that one) and a failed run back to running, and
// returns how many batches it moved.
//
// Retrying one batch, or a run with at most 1000 failed batches, is one
// atomic step. More failed batches move in steps of 1000 while a failed run
// stays failed (so none of them can be claimed yet); the last step moves the
// run to running. If the caller stops between steps, the batches moved so
// far are pending in a failed run and calling RetryBatches again moves the
// rest and the run.
func (s *Store) RetryBatches(ctx context.Context, runID int64, seq *int64) (int64, error) {
	op := fmt.Sprintf("retry failed batches of run %d", runID)
	one := ""
	if seq != nil {
		op = "retry batch " + store.BatchID(runID, *seq)
		one = strconv.FormatInt(*seq, 10)
		if *seq <= 0 {
			return 0, fmt.Errorf("%s: batch %w", op, store.ErrNotFound)
		}
	}
	if runID <= 0 {
		return 0, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	var moved int64
	for {
		_, reply, err := s.eval(ctx, retryBatchesScript, op, runID, one, s.step)
		if err != nil {
			return moved, err
		}
		n, _ := reply[0].(int64)
		done, _ := reply[1].(int64)
		moved += n
		if done == 1 || n == 0 {
			return moved, nil
		}
	}
}

// leaseEnd is now+lease in Unix microseconds, rounded up so that a positive
// lease never ends at once.
func leaseEnd(now time.Time, lease time.Duration) int64 {
	return now.UnixMicro() + int64((lease+time.Microsecond-1)/time.Microsecond)
}
