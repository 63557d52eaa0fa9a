package sqlstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// GetBatch returns one batch, or store.ErrNotFound.
func (s *Store) GetBatch(ctx context.Context, runID, seq int64) (store.Batch, error) {
	var row batchRow
	ok, err := findOne(s.db.WithContext(ctx).Table(batchesTable).Where("run_id = ? AND seq = ?", runID, seq), &row)
	if err != nil {
		return store.Batch{}, fmt.Errorf("get batch %s: %w", store.BatchID(runID, seq), err)
	}
	if !ok {
		return store.Batch{}, fmt.Errorf("get batch %s: %w", store.BatchID(runID, seq), store.ErrNotFound)
	}
	return row.batch(), nil
}

// ListBatches returns a run's batches in Seq order, filtered, with keyset
// pagination; store.ErrNotFound if the run does not exist.
func (s *Store) ListBatches(ctx context.Context, runID int64, f store.BatchFilter) (store.Page[store.Batch], error) {
	if err := f.Validate(); err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("list batches of run %d: %w", runID, err)
	}
	limit, _ := store.NormalizeLimit(f.Limit)
	after, _, _ := store.DecodeCursor(f.Cursor)
	db := s.db.WithContext(ctx)
	var exists struct{ ID int64 }
	ok, err := findOne(db.Table(runsTable).Select("id").Where("id = ?", runID), &exists)
	if err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("list batches of run %d: %w", runID, err)
	}
	if !ok {
		return store.Page[store.Batch]{}, fmt.Errorf("list batches of run %d: %w", runID, store.ErrNotFound)
	}
	q := page{table: batchesTable, where: []string{"run_id = ?", "seq > ?"}, args: []any{runID, after}, order: "seq", limit: limit + 1}
	for _, st := range f.States {
		q.states = append(q.states, string(st))
	}
	var rows []batchRow
	if err := q.find(db, &rows); err != nil {
		return store.Page[store.Batch]{}, fmt.Errorf("list batches of run %d: %w", runID, err)
	}
	out := store.Page[store.Batch]{Items: make([]store.Batch, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			out.NextCursor = store.EncodeCursor(rows[limit-1].Seq)
			break
		}
		out.Items = append(out.Items, r.batch())
	}
	return out, nil
}

// EnqueueBatch moves a pending batch to enqueued and sets EnqueuedAt; from
// any other state it is a *store.TransitionError.
func (s *Store) EnqueueBatch(ctx context.Context, runID, seq int64) (store.Batch, error) {
	var out store.Batch
	err := s.inBookkeepingTx(ctx, func(tx *gorm.DB) error {
		b, err := s.mustLockBatch(tx, runID, seq)
		if err != nil {
			return err
		}
		if from := store.BatchState(b.State); from != store.BatchPending {
			return &store.TransitionError{Entity: "batch", ID: store.BatchID(runID, seq), From: b.State, To: string(store.BatchEnqueued)}
		}
		now := s.clock()
		b.State, b.EnqueuedAt, b.UpdatedAt = string(store.BatchEnqueued), &now, now
		if err := s.updateBatch(tx, runID, seq, map[string]any{
			"state": b.State, "enqueued_at": now, "updated_at": now,
		}); err != nil {
			return err
		}
		out = b.batch()
		return moveSlotCounters(tx, runID, seq, store.BatchPending, store.BatchEnqueued, now, nil)
	})
	if err != nil {
		return store.Batch{}, fmt.Errorf("enqueue batch %s: %w", store.BatchID(runID, seq), err)
	}
	return out, nil
}

// ClaimBatch starts an attempt at a batch under c: if the run is running and
// the batch is pending, enqueued, failed, or running under an expired lease,
// the batch becomes running under c. Errors are checked in the order
// store.ErrNotFound, store.ErrBatchFinished, store.ErrRunNotRunning,
// store.ErrBatchClaimed.
func (s *Store) ClaimBatch(ctx context.Context, runID, seq int64, c store.Claim) (store.Batch, error) {
	if err := c.Validate(); err != nil {
		return store.Batch{}, fmt.Errorf("claim batch %s: %w", store.BatchID(runID, seq), err)
	}
	// On PostgreSQL one statement claims a claimable batch; what it
	// refuses is explained by the general path below.
	if b, ok, err := s.fastClaim(s.bookkeeping().WithContext(ctx), runID, seq, c); ok || (err != nil && !fallBack(err)) {
		if err != nil {
			return store.Batch{}, fmt.Errorf("claim batch %s: %w", store.BatchID(runID, seq), err)
		}
		return b, nil
	}
	// Most refused claims (a task delivered twice, a live claim) are
	// answered from one unlocking read, which sees batch and run at a single
	// instant, so they never queue for the locks the claims that can win
	// need.
	if err := s.precheckClaim(s.db.WithContext(ctx), runID, seq); err != nil {
		return store.Batch{}, fmt.Errorf("claim batch %s: %w", store.BatchID(runID, seq), err)
	}
	recheck := func(db *gorm.DB) error { return s.precheckClaim(db, runID, seq) }
	var out store.Batch
	err := s.inClaimTx(ctx, recheck, func(tx *gorm.DB) error {
		b, err := s.mustLockBatch(tx, runID, seq)
		if err != nil {
			return err
		}
		from := store.BatchState(b.State)
		if err := finished(b); err != nil {
			return err
		}
		now := s.clock()
		var runState string
		if claimRefusal(b, store.RunRunning, now) != nil {
			// Refused whatever the run's state (a live claim); which error
			// depends on it, read without taking its lock.
			var run runRow
			if _, err := findOne(tx.Table(runsTable).Select("state").Where("id = ?", runID), &run); err != nil {
				return err
			}
			runState = run.State
		} else {
			// Locking the run's row (after the batch's) keeps a pause or a
			// cancel from committing between this check and the claim.
			st, ok, err := s.lockRunShared(tx, runID)
			if err != nil {
				return err
			}
			if !ok {
				return store.ErrNotFound
			}
			runState = st
		}
		if err := claimRefusal(b, store.RunState(runState), now); err != nil {
			return err
		}
		lease := now.Add(c.Lease).Truncate(time.Microsecond)
		b.State, b.Attempts, b.Worker, b.ClaimToken = string(store.BatchRunning), b.Attempts+1, c.Worker, c.Token
		b.LeaseUntil, b.StartedAt, b.FinishedAt, b.UpdatedAt = &lease, &now, nil, now
		if err := s.updateBatch(tx, runID, seq, map[string]any{
			"state":       b.State,
			"attempts":    gorm.Expr("attempts + 1"),
			"worker":      c.Worker,
			"claim_token": c.Token,
			"lease_until": lease,
			"started_at":  now,
			"finished_at": nil,
			"updated_at":  now,
		}); err != nil {
			return err
		}
		out = b.batch()
		return moveSlotCounters(tx, runID, seq, from, store.BatchRunning, now, nil)
	})
	if err != nil {
		return store.Batch{}, fmt.Errorf("claim batch %s: %w", store.BatchID(runID, seq), err)
	}
	return out, nil
}

// ExtendClaim pushes the lease of a running batch claimed with token to
// now+lease. store.ErrStaleClaim if the claim is not current; for a batch
// that is succeeded or cancelled the error also matches
// store.ErrBatchFinished.
func (s *Store) ExtendClaim(ctx context.Context, runID, seq int64, token string, lease time.Duration) (store.Batch, error) {
	if lease <= 0 {
		return store.Batch{}, fmt.Errorf("extend claim on batch %s: %w", store.BatchID(runID, seq),
			&store.ArgumentError{Field: "lease", Message: fmt.Sprintf("must be positive, got %s", lease)})
	}
	var out store.Batch
	err := s.inBookkeepingTx(ctx, func(tx *gorm.DB) error {
		b, err := s.mustLockBatch(tx, runID, seq)
		if err != nil {
			return err
		}
		if st := store.BatchState(b.State); st == store.BatchSucceeded || st == store.BatchCancelled {
			return fmt.Errorf("batch is %s: %w; %w", st, store.ErrBatchFinished, store.ErrStaleClaim)
		}
		if err := currentClaim(b, token); err != nil {
			return err
		}
		now := s.clock()
		until := now.Add(lease).Truncate(time.Microsecond)
		b.LeaseUntil, b.UpdatedAt = &until, now
		if err := s.updateBatch(tx, runID, seq, map[string]any{"lease_until": until, "updated_at": now}); err != nil {
			return err
		}
		out = b.batch()
		return nil
	})
	if err != nil {
		return store.Batch{}, fmt.Errorf("extend claim on batch %s: %w", store.BatchID(runID, seq), err)
	}
	return out, nil
}

// CompleteBatch ends the attempt holding token successfully: the batch
// becomes succeeded with r's counts and the run's counters and row counts
// move with it, in one transaction.
func (s *Store) CompleteBatch(ctx context.Context, runID, seq int64, token string, r store.Result) (store.Batch, error) {
	if err := r.Validate(); err != nil {
		return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
	}
	if b, ok, err := s.fastComplete(s.wdb.WithContext(ctx), runID, seq, token, r); ok || (err != nil && !fallBack(err)) {
		if err != nil {
			return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
		}
		return b, nil
	}
	var out store.Batch
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var err error
		out, err = s.completeBatch(tx, runID, seq, token, r)
		return err
	})
	if err != nil {
		return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
	}
	return out, nil
}

// CompleteBatchTx is CompleteBatch inside the caller's open transaction tx
// (begun on DB() or on a connection to the same database), so that a
// backfill's or a sink's writes and the batch's checkpoint commit or roll
// back together. It neither commits nor rolls back tx, and does not retry:
// on a deadlock the caller retries its whole transaction. When it returns
// an error it has changed nothing.
func (s *Store) CompleteBatchTx(ctx context.Context, tx *gorm.DB, runID, seq int64, token string, r store.Result) (store.Batch, error) {
	if tx == nil {
		return store.Batch{}, fmt.Errorf("complete batch %s: nil transaction", store.BatchID(runID, seq))
	}
	if err := r.Validate(); err != nil {
		return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
	}
	tx = tx.WithContext(ctx)
	if b, ok, err := s.fastComplete(tx, runID, seq, token, r); ok || err != nil {
		if err != nil {
			return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
		}
		return b, nil
	}
	b, err := s.completeBatch(tx, runID, seq, token, r)
	if err != nil {
		return store.Batch{}, fmt.Errorf("complete batch %s: %w", store.BatchID(runID, seq), err)
	}
	return b, nil
}

// completeBatch is CompleteBatch's work inside transaction tx. Every check
// comes before the first write, so an error leaves tx unchanged.
func (s *Store) completeBatch(tx *gorm.DB, runID, seq int64, token string, r store.Result) (store.Batch, error) {
	b, err := s.mustLockBatch(tx, runID, seq)
	if err != nil {
		return store.Batch{}, err
	}
	if err := finished(b); err != nil {
		return store.Batch{}, err
	}
	if err := currentClaim(b, token); err != nil {
		return store.Batch{}, err
	}
	now := s.clock()
	b.State, b.RowsRead, b.RowsWritten, b.RowsSkipped = string(store.BatchSucceeded), r.RowsRead, r.RowsWritten, r.RowsSkipped
	b.DurationNS, b.FinishedAt, b.UpdatedAt = int64(r.Duration), &now, now
	b.Error, b.ErrorStack, b.ClaimToken, b.LeaseUntil = "", "", "", nil
	if err := s.updateBatch(tx, runID, seq, map[string]any{
		"state":        b.State,
		"rows_read":    r.RowsRead,
		"rows_written": r.RowsWritten,
		"rows_skipped": r.RowsSkipped,
		"duration_ns":  b.DurationNS,
		"finished_at":  now,
		"error":        "",
		"error_stack":  "",
		"claim_token":  "",
		"lease_until":  nil,
		"updated_at":   now,
	}); err != nil {
		return store.Batch{}, err
	}
	err = moveSlotCounters(tx, runID, seq, store.BatchRunning, store.BatchSucceeded, now, map[string]any{
		"rows_read":    gorm.Expr("rows_read + ?", r.RowsRead),
		"rows_written": gorm.Expr("rows_written + ?", r.RowsWritten),
		"rows_skipped": gorm.Expr("rows_skipped + ?", r.RowsSkipped),
	})
	if err != nil {
		return store.Batch{}, err
	}
	return b.batch(), nil
}

// FailBatch ends the attempt holding token with an error: the batch becomes
// failed (f.Final) or enqueued for another attempt, keeping the error, and
// the claim is released.
func (s *Store) FailBatch(ctx context.Context, runID, seq int64, token string, f store.Failure) (store.Batch, error) {
	if f.Duration < 0 {
		return store.Batch{}, fmt.Errorf("fail batch %s: %w", store.BatchID(runID, seq),
			&store.ArgumentError{Field: "duration", Message: "must not be negative"})
	}
	var out store.Batch
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		b, err := s.mustLockBatch(tx, runID, seq)
		if err != nil {
			return err
		}
		if err := finished(b); err != nil {
			return err
		}
		if err := currentClaim(b, token); err != nil {
			return err
		}
		now := s.clock()
		to := store.BatchEnqueued
		set := map[string]any{
			"error":       f.Message,
			"error_stack": f.Stack,
			"duration_ns": int64(f.Duration),
			"claim_token": "",
			"lease_until": nil,
			"updated_at":  now,
		}
		if f.Final {
			to = store.BatchFailed
			set["finished_at"], b.FinishedAt = now, &now
		}
		set["state"] = string(to)
		b.State, b.Error, b.ErrorStack, b.DurationNS = string(to), f.Message, f.Stack, int64(f.Duration)
		b.ClaimToken, b.LeaseUntil, b.UpdatedAt = "", nil, now
		if err := s.updateBatch(tx, runID, seq, set); err != nil {
			return err
		}
		out = b.batch()
		return moveSlotCounters(tx, runID, seq, store.BatchRunning, to, now, nil)
	})
	if err != nil {
		return store.Batch{}, fmt.Errorf("fail batch %s: %w", store.BatchID(runID, seq), err)
	}
	return out, nil
}

// precheckClaim refuses a claim that cannot succeed, judging from one
// unlocking read of the batch and its run. Its answers hold at the instant
// of that read; nil means the claim may succeed and must be decided under
// the locks.
func (s *Store) precheckClaim(db *gorm.DB, runID, seq int64) error {
	var row struct {
		State      string     `gorm:"column:state"`
		Worker     string     `gorm:"column:worker"`
		LeaseUntil *time.Time `gorm:"column:lease_until"`
		RunState   string     `gorm:"column:run_state"`
	}
	ok, err := findOne(db.Table(batchesTable+" b").
		Select("b.state, b.worker, b.lease_until, r.state AS run_state").
		Joins("JOIN "+runsTable+" r ON r.id = b.run_id").
		Where("b.run_id = ? AND b.seq = ?", runID, seq), &row)
	if err != nil {
		return err
	}
	if !ok {
		return store.ErrNotFound
	}
	b := batchRow{State: row.State, Worker: row.Worker, LeaseUntil: row.LeaseUntil}
	return claimRefusal(b, store.RunState(row.RunState), s.clock())
}

// currentClaim refuses token unless it holds the batch's current claim. An
// expired lease still counts while no other attempt has claimed the batch.
func currentClaim(b batchRow, token string) error {
	if st := store.BatchState(b.State); st != store.BatchRunning {
		return fmt.Errorf("batch is %s, no attempt holds it: %w", st, store.ErrStaleClaim)
	}
	if token == "" || b.ClaimToken != token {
		return fmt.Errorf("batch is held by another attempt: %w", store.ErrStaleClaim)
	}
	return nil
}

// lockBatch reads a batch's row and, outside SQLite, locks it until the
// transaction ends.
func (s *Store) lockBatch(tx *gorm.DB, runID, seq int64) (batchRow, bool, error) {
	var row batchRow
	ok, err := findOne(s.forUpdate(tx.Table(batchesTable).Where("run_id = ? AND seq = ?", runID, seq)), &row)
	return row, ok, err
}

// mustLockBatch is lockBatch with store.ErrNotFound for a missing batch.
func (s *Store) mustLockBatch(tx *gorm.DB, runID, seq int64) (batchRow, error) {
	b, ok, err := s.lockBatch(tx, runID, seq)
	if err != nil {
		return batchRow{}, err
	}
	if !ok {
		return batchRow{}, store.ErrNotFound
	}
	return b, nil
}

// updateBatch applies set to one batch row, which the transaction has
// locked.
func (s *Store) updateBatch(tx *gorm.DB, runID, seq int64, set map[string]any) error {
	res := tx.Table(batchesTable).Where("run_id = ? AND seq = ?", runID, seq).Updates(set)
	if res.Error != nil {
		return res.Error
	}
	return nil
}
