package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// RescheduleRun sets the StartAt of a scheduled run; from any other state it
// is a *store.TransitionError.
func (s *Store) RescheduleRun(ctx context.Context, id int64, at time.Time) (store.Run, error) {
	op := fmt.Sprintf("reschedule run %d", id)
	if id <= 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	_, reply, err := s.eval(ctx, rescheduleRunScript, op, id, micros(at))
	if err != nil {
		return store.Run{}, err
	}
	return decodeRun(pairs(reply))
}

// ExpireClaims ends the leases worker holds on running batches of the run
// and returns those batches.
func (s *Store) ExpireClaims(ctx context.Context, runID int64, worker string) ([]store.Batch, error) {
	op := fmt.Sprintf("expire claims of worker %q on run %d", worker, runID)
	if worker == "" {
		return nil, fmt.Errorf("%s: %w", op, &store.ArgumentError{Field: "worker", Message: "must not be empty"})
	}
	if runID <= 0 {
		return nil, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	_, reply, err := s.eval(ctx, expireClaimsScript, op, runID, worker)
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(reply))
	for _, v := range reply {
		str, _ := v.(string)
		seq, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: unexpected script reply %v", op, reply)
		}
		seqs = append(seqs, seq)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	bs, err := s.loadBatches(ctx, runID, seqs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return bs, nil
}

// CancelExpiredBatches cancels the running batches of a cancelling run whose
// lease has expired, and the run once none is running (and no stepped
// CancelRun is under way).
func (s *Store) CancelExpiredBatches(ctx context.Context, runID int64) (store.Run, error) {
	op := fmt.Sprintf("cancel expired batches of run %d", runID)
	if runID <= 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	_, reply, err := s.eval(ctx, cancelExpiredScript, op, runID)
	if err != nil {
		return store.Run{}, err
	}
	return decodeRun(pairs(reply))
}
