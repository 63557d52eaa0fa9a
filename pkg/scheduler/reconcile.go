package scheduler

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// reconcilerStore is what the reconciler needs of the store.
type reconcilerStore interface {
	runPager
	ListBatches(ctx context.Context, runID int64, f store.BatchFilter) (store.Page[store.Batch], error)
}

// taskInspector is what the reconciler needs of the task queue
// (tasks.Client).
type taskInspector interface {
	batchQueue
	BatchTaskState(ctx context.Context, p tasks.BatchPayload) (tasks.TaskState, error)
}

// reconciler makes sure every batch the store says is queued, or is running
// under an expired claim, has a live task — after Redis lost its data, a
// task was revoked while its run was paused, or a worker died. The leader
// runs it every Config.ReconcileInterval, on a resumed or retried run at
// once, and the rescuer asks it to requeue a dead worker's batches.
type reconciler struct {
	store reconcilerStore
	queue taskInspector
	// grace is how old an enqueued batch must be before its missing task
	// counts as lost (Config.ReconcileGrace).
	grace  time.Duration
	log    *zap.Logger
	tracer trace.Tracer // nil: tracing off (see trace.go)
}

// reconcile looks at every running run.
func (c *reconciler) reconcile(ctx context.Context) {
	runs, err := listRuns(ctx, c.store, store.RunRunning)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("reconcile: list runs", zap.Error(err))
	}
	for _, r := range runs {
		c.reconcileRun(ctx, r, false)
	}
}

// reconcileRun re-enqueues the run's lost tasks. With now, batches are checked
// whatever their age (the run was just resumed or retried).
func (c *reconciler) reconcileRun(ctx context.Context, r store.Run, now bool) {
	if r.BatchesEnqueued == 0 && r.BatchesRunning == 0 {
		return
	}
	log := c.log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition))
	cutoff := time.Now().Add(-c.grace)
	if now {
		cutoff = time.Now()
	}
	f := store.BatchFilter{States: []store.BatchState{store.BatchEnqueued, store.BatchRunning}, Limit: store.MaxLimit}
	for {
		page, err := c.store.ListBatches(ctx, r.ID, f)
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
			c.requeue(ctx, r, b, false, log)
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
func (c *reconciler) requeue(ctx context.Context, r store.Run, b store.Batch, now bool, log *zap.Logger) {
	p := batchPayload(r, b)
	state, err := c.queue.BatchTaskState(ctx, p)
	if err != nil {
		log.Warn("reconcile: inspect task", zap.Int64("batch", b.Seq), zap.Error(err))
		return
	}
	switch state {
	case tasks.TaskMissing:
	case tasks.TaskCompleted, tasks.TaskArchived:
		// The task ended without the batch ending (its run was not running,
		// or recording the outcome failed): start it over.
		if err := c.queue.DeleteBatchTask(ctx, p); err != nil {
			log.Warn("reconcile: delete stale task", zap.Int64("batch", b.Seq), zap.Error(err))
			return
		}
	case tasks.TaskActive:
		if !now && b.UpdatedAt.After(time.Now().Add(-c.grace)) {
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
	p.Trace = runTraceparent(c.tracer, r)
	added, err := c.queue.EnqueueBatch(ctx, p, enqueueOptions(r))
	if err != nil {
		log.Warn("reconcile: enqueue", zap.Int64("batch", b.Seq), zap.Error(err))
		return
	}
	if !added {
		return
	}
	log.Info("re-enqueued a lost batch task", zap.Int64("batch", b.Seq), zap.String("state", string(b.State)), zap.String("task", string(state)), zap.String("task_id", p.TaskID()))
}
