package scheduler

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/worker"
)

// rescuerStore is what the rescuer needs of the store.
type rescuerStore interface {
	runPager
	ExpireClaims(ctx context.Context, runID int64, worker string) ([]store.Batch, error)
}

// workerRegistry is what the rescuer needs of the workers' registry
// (worker.Presence).
type workerRegistry interface {
	List(ctx context.Context) ([]worker.WorkerInfo, error)
	Forget(ctx context.Context, id string) error
}

// rescuer ends the claims of workers whose heartbeat stopped. The leader
// runs it every Config.WorkerCheckInterval.
type rescuer struct {
	store   rescuerStore
	workers workerRegistry
	// requeue enqueues a rescued batch's task (reconciler.requeue);
	// settle looks at a cancelling run again (runPlanner.advance), which
	// may now end.
	requeue func(ctx context.Context, r store.Run, b store.Batch, now bool, log *zap.Logger)
	settle  func(ctx context.Context, r store.Run)
	log     *zap.Logger
}

// rescue ends the claims of workers whose heartbeat stopped (a
// worker killed with SIGKILL, a host gone), so their batches run again
// within seconds instead of after their claim lease, which stays the
// backstop. A running run's batch gets a rescue task at once; a cancelling
// run's is cancelled. A dead worker is forgotten once all its claims are
// ended.
func (c *rescuer) rescue(ctx context.Context) {
	ws, err := c.workers.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("list workers", zap.Error(err))
		}
		return
	}
	var dead []string
	for _, w := range ws {
		if !w.Alive {
			dead = append(dead, w.ID)
		}
	}
	if len(dead) == 0 {
		return
	}
	runs, err := listRuns(ctx, c.store, store.RunRunning, store.RunPaused, store.RunCancelling)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("rescue dead workers: list runs", zap.Error(err))
		}
		return
	}
	for _, id := range dead {
		log := c.log.With(zap.String("worker", id))
		rescued, complete := 0, true
		for _, r := range runs {
			if r.BatchesRunning == 0 {
				continue
			}
			bs, err := c.store.ExpireClaims(ctx, r.ID, id)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					complete = false
					log.Warn("rescue dead worker: end its claims", zap.Int64("run", r.ID), zap.Error(err))
				}
				continue
			}
			if len(bs) == 0 {
				continue
			}
			rescued += len(bs)
			rlog := log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition))
			for _, b := range bs {
				rlog.Warn("batch of a dead worker rescued", zap.Int64("batch", b.Seq), zap.Int("attempts", b.Attempts))
				if r.State == store.RunRunning {
					c.requeue(ctx, r, b, true, rlog)
				}
			}
			if r.State == store.RunCancelling {
				c.settle(ctx, r)
			}
		}
		if !complete {
			continue
		}
		if err := c.workers.Forget(ctx, id); err != nil {
			log.Warn("forget dead worker", zap.Error(err))
			continue
		}
		log.Warn("worker stopped heart-beating; its claims were ended", zap.Int("batches", rescued))
	}
}
