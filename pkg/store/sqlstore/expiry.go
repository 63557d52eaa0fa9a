package sqlstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// RescheduleRun sets the StartAt of a scheduled run; from any other state it
// is a *store.TransitionError.
func (s *Store) RescheduleRun(ctx context.Context, id int64, at time.Time) (store.Run, error) {
	at = at.UTC().Truncate(time.Microsecond)
	var out store.Run
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, ok, err := s.lockRun(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		if from := store.RunState(row.State); from != store.RunScheduled {
			return &store.TransitionError{Entity: "run", ID: runName(id), From: string(from), To: string(store.RunScheduled)}
		}
		now := s.clock()
		if err := tx.Table(runsTable).Where("id = ?", id).Updates(map[string]any{"start_at": at, "updated_at": now}).Error; err != nil {
			return err
		}
		row, err = readRun(tx, id)
		out = row.run()
		return err
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("reschedule run %d: %w", id, err)
	}
	return out, nil
}

// ExpireClaims ends the leases worker holds on running batches of the run
// and returns those batches.
func (s *Store) ExpireClaims(ctx context.Context, runID int64, worker string) ([]store.Batch, error) {
	if worker == "" {
		return nil, fmt.Errorf("expire claims of run %d: %w", runID, &store.ArgumentError{Field: "worker", Message: "must not be empty"})
	}
	var out []store.Batch
	err := s.inBookkeepingTx(ctx, func(tx *gorm.DB) error {
		out = nil
		now := s.clock()
		// Times are compared here rather than in SQL, where SQLite would
		// compare their text; a run has at most max_in_flight running
		// batches.
		var running []batchRow
		if err := s.forUpdate(tx.Table(batchesTable).
			Where("run_id = ? AND state = ? AND worker = ?", runID, string(store.BatchRunning), worker).
			Order("seq")).Find(&running).Error; err != nil {
			return err
		}
		var rows []batchRow
		for _, b := range running {
			if leaseLive(b, now) {
				rows = append(rows, b)
			}
		}
		if len(rows) == 0 {
			var exists struct{ ID int64 }
			ok, err := findOne(tx.Table(runsTable).Select("id").Where("id = ?", runID), &exists)
			if err != nil {
				return err
			}
			if !ok {
				return store.ErrNotFound
			}
			return nil
		}
		for _, b := range rows {
			if err := s.updateBatch(tx, runID, b.Seq, map[string]any{"lease_until": now, "updated_at": now}); err != nil {
				return err
			}
			b.LeaseUntil, b.UpdatedAt = &now, now
			out = append(out, b.batch())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire claims of worker %q on run %d: %w", worker, runID, err)
	}
	return out, nil
}

// CancelExpiredBatches cancels the running batches of a cancelling run whose
// lease has expired, and the run once none is running.
func (s *Store) CancelExpiredBatches(ctx context.Context, runID int64) (store.Run, error) {
	var out store.Run
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Batch rows first, then the run's: the order every transaction of
		// the store takes its locks in.
		if err := s.lockBatchesIn(tx, runID, store.BatchRunning); err != nil {
			return err
		}
		row, ok, err := s.lockRun(tx, runID)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		if store.RunState(row.State) != store.RunCancelling {
			row, err = readRun(tx, runID)
			out = row.run()
			return err
		}
		now := s.clock()
		var running []batchRow
		if err := tx.Table(batchesTable).Where("run_id = ? AND state = ?", runID, string(store.BatchRunning)).
			Order("seq").Find(&running).Error; err != nil {
			return err
		}
		for _, b := range running {
			if leaseLive(b, now) {
				continue
			}
			seq := b.Seq
			if err := s.updateBatch(tx, runID, seq, map[string]any{
				"state": string(store.BatchCancelled), "finished_at": now, "claim_token": "", "lease_until": nil, "updated_at": now,
			}); err != nil {
				return err
			}
			if err := moveSlotCounters(tx, runID, seq, store.BatchRunning, store.BatchCancelled, now, nil); err != nil {
				return err
			}
		}
		if row, err = readRun(tx, runID); err != nil {
			return err
		}
		if row.BatchesRunning == 0 {
			if err := tx.Table(runsTable).Where("id = ?", runID).Updates(map[string]any{
				"state": string(store.RunCancelled), "finished_at": now, "updated_at": now,
			}).Error; err != nil {
				return err
			}
			if row, err = readRun(tx, runID); err != nil {
				return err
			}
		}
		out = row.run()
		return nil
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("cancel expired batches of run %d: %w", runID, err)
	}
	return out, nil
}
