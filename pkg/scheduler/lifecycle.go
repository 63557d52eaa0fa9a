package scheduler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
)

// The three moments of a run the planner announces. Whatever else must
// happen then (a timeline entry, hooks, a span) is one call added here.

// runStarted is called once the planner moved a scheduled run to running,
// before its first batches are planned; r is the running run.
func (p *runPlanner) runStarted(ctx context.Context, r store.Run, log *zap.Logger) {
	log.Info("run started")
	p.noteStarted(ctx, r)
	p.notify.started(ctx, r)
}

// runEnded is called once the planner ended a run: succeeded or failed
// (finish, the error budget, a run that cannot plan) or cancelled (its
// last in-flight batch ended); r is the run as the store left it. A run
// ended by control directly (cancelled with nothing in flight) does not
// pass here.
func (p *runPlanner) runEnded(ctx context.Context, r store.Run, log *zap.Logger) {
	p.noteFinished(ctx, r)
	p.notify.ended(ctx, r)
	p.forgetHealth(ctx, r)
	p.forget(r.ID)
}

// batchHeld is called each time the run's pacing (sleep, rows_per_second)
// holds batch b back; it may start at until, and the planner wakes then.
func (p *runPlanner) batchHeld(ctx context.Context, r store.Run, b store.Batch, until time.Time) {
	p.wake.noLaterThan(until)
	p.noteThrottled(ctx, r)
}
