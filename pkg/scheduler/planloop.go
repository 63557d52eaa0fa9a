package scheduler

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
)

// runReader is what the plan loop needs of the store.
type runReader interface {
	runPager
	GetRun(ctx context.Context, id int64) (store.Run, error)
}

// planLoop is the leader's main loop: it hands runs to the planner when an
// event says a run changed (a batch ended, a run was created, resumed or
// retried), on every poll (a safety net, and the look at every active
// flow), and when a paced batch's turn or a start_at comes.
type planLoop struct {
	store   runReader
	events  *events.Bus
	poll    time.Duration
	wake    *wakeup
	planner *runPlanner
	flows   *flowTrigger
	// reconcileNow re-enqueues a resumed or retried run's lost tasks at
	// once (reconciler.reconcileRun).
	reconcileNow func(ctx context.Context, r store.Run)
	metrics      passMetrics
	log          *zap.Logger
}

// run looks after runs until ctx ends.
func (l *planLoop) run(ctx context.Context) {
	changed := l.events.Subscribe(ctx)
	poll := time.NewTicker(l.poll)
	defer poll.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	l.pass(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-changed:
			if !ok {
				// Subscription ended (Redis gone); keep going on polls.
				changed = nil
				continue
			}
			var resumed map[int64]bool
			resumed, changed = coalesce(ev, changed)
			for id, r := range resumed {
				l.handleRun(ctx, id, r)
			}
		case <-poll.C:
			l.pass(ctx)
		case <-wake.C:
			l.pass(ctx)
		}
		if d := l.wake.next(); d > 0 {
			wake.Reset(d)
		}
	}
}

// coalesce gathers first and the events already waiting on ch into one
// look at each run: run id → whether any of its events was a resume. It
// returns ch, or nil once ch is closed.
func coalesce(first events.Event, ch <-chan events.Event) (map[int64]bool, <-chan events.Event) {
	resumed := map[int64]bool{first.RunID: first.Resumed}
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return resumed, nil
			}
			resumed[ev.RunID] = resumed[ev.RunID] || ev.Resumed
		default:
			return resumed, ch
		}
	}
}

// activeRunStates are the states of the runs the planner looks after.
var activeRunStates = []store.RunState{store.RunScheduled, store.RunRunning, store.RunCancelling}

// pass looks at every active run and every active flow.
func (l *planLoop) pass(ctx context.Context) {
	start := time.Now()
	defer l.metrics.passed(start)
	runs, err := listRuns(ctx, l.store, activeRunStates...)
	l.metrics.activeRuns(runs)
	l.metrics.queueDepth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("list active runs", zap.Error(err))
		}
		return
	}
	for _, r := range runs {
		l.planner.advance(ctx, r)
	}
	l.flows.trigger(ctx)
}

// handleRun reacts to an event about run id.
func (l *planLoop) handleRun(ctx context.Context, id int64, resumed bool) {
	r, err := l.store.GetRun(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			l.log.Warn("load run", zap.Int64("run", id), zap.Error(err))
		}
		return
	}
	l.planner.advance(ctx, r)
	if resumed && r.State == store.RunRunning {
		// A resumed or retried run: its enqueued batches lost their tasks
		// while it was not running (workers revoked them).
		l.reconcileNow(ctx, r)
	}
}
