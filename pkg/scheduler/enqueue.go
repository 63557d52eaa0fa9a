package scheduler

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// enqueueAll enqueues bs as enqueue does each. It returns false when the
// run's pacing stopped it before the last one. An unpaced run's batches are
// enqueued side by side: one after the other, the two round trips each takes
// (the store, then the queue) would bound the run's throughput.
func (p *runPlanner) enqueueAll(ctx context.Context, st *runState, r store.Run, bs []store.Batch) (bool, error) {
	if pacing(r) > 0 || len(bs) < 2 {
		for _, b := range bs {
			if ok, err := p.enqueue(ctx, st, r, b); err != nil || !ok {
				return ok, err
			}
		}
		return true, nil
	}
	sem := make(chan struct{}, enqueueParallel)
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = p.enqueue(ctx, st, r, b)
		})
	}
	wg.Wait()
	return true, errors.Join(errs...)
}

// enqueue moves a pending batch to enqueued and puts its task on the queue,
// unless the run's pacing says not yet (then it returns false).
func (p *runPlanner) enqueue(ctx context.Context, st *runState, r store.Run, b store.Batch) (bool, error) {
	if gap := pacing(r); gap > 0 {
		ok, at := st.pace(gap, time.Now())
		if !ok {
			p.batchHeld(ctx, r, b, at)
			return false, nil
		}
		p.wake.noLaterThan(at) // the next batch's turn
	}
	ctx, span := traceEnqueue(ctx, p.tracer, r, b)
	defer span.End()
	if b.State == store.BatchPending {
		if _, err := p.store.EnqueueBatch(ctx, r.ID, b.Seq); err != nil {
			if errors.Is(err, store.ErrIllegalTransition) {
				return true, nil // someone else enqueued or cancelled it
			}
			return false, err
		}
	}
	return true, p.enqueueTask(ctx, r, b)
}

// enqueueTask puts the batch's task on the queue (a no-op when it is there).
func (p *runPlanner) enqueueTask(ctx context.Context, r store.Run, b store.Batch) error {
	_, err := p.queue.EnqueueBatch(ctx, withTrace(ctx, batchPayload(r, b)), enqueueOptions(r))
	if err == nil && b.Retries > 0 {
		// A retried batch's earlier task (archived when it failed for
		// good) is superseded: remove it, so the queue's view does not
		// show a failure of a batch that has moved on. Best effort; the
		// store refuses a stale task anyway.
		old := tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries - 1}
		if derr := p.queue.DeleteBatchTask(ctx, old); derr != nil {
			p.log.Debug("remove the superseded task of a retried batch", zap.String("task", old.TaskID()), zap.Error(derr))
		}
	}
	return err
}

// batchPayload is the task of the batch's current try.
func batchPayload(r store.Run, b store.Batch) tasks.BatchPayload {
	return tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries, Definition: r.Definition}
}

// enqueueOptions are the run's task options.
func enqueueOptions(r store.Run) tasks.EnqueueOptions {
	return tasks.EnqueueOptions{MaxAttempts: r.Options.MaxAttempts, Timeout: r.Options.BatchTimeout}
}
