package scheduler

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// reconcile makes sure every batch the store says is queued, or is running
// under an expired claim, has a live task — after Redis lost its data, a
// task was revoked while its run was paused, or a worker died.
func (s *Scheduler) reconcile(ctx context.Context) {
	f := store.RunFilter{States: []store.RunState{store.RunRunning}, Limit: store.MaxLimit}
	for {
		page, err := s.cfg.Store.ListRuns(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("reconcile: list runs", zap.Error(err))
			}
			return
		}
		for _, r := range page.Items {
			s.reconcileRun(ctx, r, false)
		}
		if page.NextCursor == "" {
			return
		}
		f.Cursor = page.NextCursor
	}
}

// reconcileRun re-enqueues the run's lost tasks. With now, batches are checked
// whatever their age (the run was just resumed or retried).
func (s *Scheduler) reconcileRun(ctx context.Context, r store.Run, now bool) {
	if r.BatchesEnqueued == 0 && r.BatchesRunning == 0 {
		return
	}
	log := s.log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition))
	cutoff := time.Now().Add(-s.cfg.ReconcileGrace)
	if now {
		cutoff = time.Now()
	}
	f := store.BatchFilter{States: []store.BatchState{store.BatchEnqueued, store.BatchRunning}, Limit: store.MaxLimit}
	for {
		page, err := s.cfg.Store.ListBatches(ctx, r.ID, f)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("reconcile: list batches", zap.Error(err))
			}
			return
		}
		for _, b := range page.Items {
			switch {
			case b.State == store.BatchEnqueued && b.UpdatedAt.Before(cutoff):
			case b.State == store.BatchRunning && b.LeaseUntil != nil && b.LeaseUntil.Before(time.Now()):
			default:
				continue
			}
			s.requeue(ctx, r, b, false, log)
		}
		if page.NextCursor == "" {
			return
		}
		f.Cursor = page.NextCursor
	}
}

// requeue enqueues the batch's task again if it is lost. With now, an
// active task is rescued at once (its worker is known to be dead) rather
// than after the reconcile grace.
func (s *Scheduler) requeue(ctx context.Context, r store.Run, b store.Batch, now bool, log *zap.Logger) {
	p := tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries, Definition: r.Definition}
	state, err := s.tasks.BatchTaskState(ctx, p)
	if err != nil {
		log.Warn("reconcile: inspect task", zap.Int64("batch", b.Seq), zap.Error(err))
		return
	}
	switch state {
	case tasks.TaskMissing:
	case tasks.TaskCompleted, tasks.TaskArchived:
		// The task ended without the batch ending (its run was not running,
		// or recording the outcome failed): start it over.
		if err := s.tasks.DeleteBatchTask(ctx, p); err != nil {
			log.Warn("reconcile: delete stale task", zap.Int64("batch", b.Seq), zap.Error(err))
			return
		}
	case tasks.TaskActive:
		if !now && b.UpdatedAt.After(time.Now().Add(-s.cfg.ReconcileGrace)) {
			return // a worker may be claiming it right now
		}
		// A worker holds the task but the batch shows no live attempt: the
		// claim's lease expired (its worker stopped heart-beating), or the
		// task was dequeued long ago and never claimed. Its worker died;
		// asynq would recover the task only a minute or more later, so a
		// rescue task runs the batch now. When the orphan comes back, the
		// store says the batch is finished.
		if b.State == store.BatchRunning {
			p.Rescue = fmt.Sprintf("r%d", b.Attempts)
		} else {
			p.Rescue = fmt.Sprintf("e%d", b.Attempts)
		}
	default:
		return // queued, scheduled or retrying: it will come
	}
	p.Trace = s.runTraceparent(r)
	added, err := s.tasks.EnqueueBatch(ctx, p, tasks.EnqueueOptions{MaxAttempts: r.Options.MaxAttempts, Timeout: r.Options.BatchTimeout})
	if err != nil {
		log.Warn("reconcile: enqueue", zap.Int64("batch", b.Seq), zap.Error(err))
		return
	}
	if !added {
		return
	}
	log.Info("re-enqueued a lost batch task", zap.Int64("batch", b.Seq), zap.String("state", string(b.State)), zap.String("task", string(state)), zap.String("task_id", p.TaskID()))
}

// cleanQueue removes queue entries asynq cannot decode, which would stay in
// its active list for good and make its recoverer fail for the whole queue.
func (s *Scheduler) cleanQueue(ctx context.Context) {
	removed, err := s.tasks.CleanQueue(ctx)
	for _, b := range removed {
		s.log.Warn("removed an undecodable queue entry", zap.String("queue", s.tasks.Queue()),
			zap.String("list", b.List), zap.String("entry", b.ID), zap.String("reason", b.Reason))
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("clean queue", zap.Error(err))
	}
}
