package scheduler

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// SchedulerIdentity is the created_by of runs the scheduler starts.
const SchedulerIdentity = "scheduler"

// flowTriggerStore is what the flow trigger needs of the store.
type flowTriggerStore interface {
	ListFlows(ctx context.Context) ([]store.FlowState, error)
	ListRuns(ctx context.Context, f store.RunFilter) (store.Page[store.Run], error)
	RecordMissedTick(ctx context.Context, name string, at time.Time) (store.FlowState, error)
}

// jobResolver finds a definition's job (engine.Registry).
type jobResolver interface {
	Resolve(ctx context.Context, name string, specVersion int64) (engine.Job, error)
}

// runCreator creates runs (control.Controller).
type runCreator interface {
	CreateRun(ctx context.Context, n control.NewRun) (store.Run, error)
}

// flowTrigger starts runs of active flows when their runtime says so. The
// plan loop runs it at the end of every pass.
type flowTrigger struct {
	store flowTriggerStore
	jobs  jobResolver
	env   engine.Env // to open a flow's pipeline and see whether it has anything to move
	runs  runCreator
	wake  *wakeup
	log   *zap.Logger

	mu      sync.Mutex
	idle    map[string]time.Time // flows whose last tick found nothing to move
	flowErr map[string]string    // flows' latest trigger error, logged once
}

// trigger starts a run of every active flow whose runtime says it is
// time. A flow runs one run at a time: a tick that comes due while a run of
// the flow is live is recorded as missed (Store.RecordMissedTick) and
// logged, once per tick, and the flow runs again as soon as the live run
// ends.
func (ft *flowTrigger) trigger(ctx context.Context) {
	flows, err := ft.store.ListFlows(ctx)
	if err != nil {
		if ctx.Err() == nil {
			ft.log.Warn("list flows", zap.Error(err))
		}
		return
	}
	now := time.Now()
	for _, f := range flows {
		if !f.Active {
			continue
		}
		ft.triggerFlow(ctx, f, now)
	}
}

// maxMissedPerPass bounds the ticks one pass records as missed for a flow
// (a short interval after a long outage); the next pass goes on.
const maxMissedPerPass = 100

func (ft *flowTrigger) triggerFlow(ctx context.Context, f store.FlowState, now time.Time) {
	log := ft.log.With(zap.String("definition", f.Name))
	// A spec flow triggers by its latest version's runtime.
	job, err := ft.jobs.Resolve(ctx, f.Name, 0)
	if err != nil {
		if ctx.Err() == nil && ft.newFlowError(f.Name, err) {
			log.Warn("cannot trigger flow", zap.Error(err))
		}
		return
	}
	ft.newFlowError(f.Name, nil)
	trig, ok := job.(engine.Triggered)
	if !ok {
		return
	}
	rt := trig.Runtime()
	var last time.Time
	page, err := ft.store.ListRuns(ctx, store.RunFilter{Definition: f.Name, Limit: 1})
	if err != nil {
		log.Warn("last run of flow", zap.Error(err))
		return
	}
	repeats := !rt.Next(now).IsZero()
	if len(page.Items) > 0 {
		if r := page.Items[0]; !r.State.Terminal() {
			if repeats {
				ft.recordMissedTicks(ctx, f, rt, r, now, log)
			}
			return
		}
		last = page.Items[0].CreatedAt
	}
	if at, ok := activatedAt(f); !repeats && ok && last.Before(at) {
		// A runtime that runs once runs once per activation: runs
		// from before this activation (a trigger by hand, an earlier
		// activation) do not count.
		last = time.Time{}
	}
	if at := ft.idleAt(f.Name); repeats && at.After(last) {
		// The last tick found nothing to move: the next one counts
		// from it, as if it had run.
		last = at
	}
	next := rt.Next(last)
	if next.IsZero() {
		return
	}
	if last.IsZero() && next.After(now) {
		// A schedule with no run yet (cron) counts from the flow's
		// activation, not from each pass, or it would never come due.
		if at, ok := activatedAt(f); ok {
			next = rt.Next(at)
		}
	}
	if now.Before(next) {
		ft.wake.noLaterThan(next)
		return
	}
	if repeats && ft.nothingToMove(ctx, job, f) {
		// A run now would read nothing: skip the tick rather than fill
		// the runs list with empty runs.
		ft.setIdle(f.Name, now)
		log.Debug("flow tick skipped: nothing new after the watermark")
		return
	}
	r, err := ft.runs.CreateRun(ctx, control.NewRun{Definition: f.Name, CreatedBy: SchedulerIdentity, Created: createdOnTick(rt.String())})
	var busy *store.FlowBusyError
	if errors.As(err, &busy) {
		// A run started by hand (or by another scheduler) since we
		// looked: the store refused the second one.
		log.Info("flow tick missed: a run of the flow is live", zap.Int64("live_run", busy.RunID), zap.String("state", string(busy.State)))
		if repeats {
			ft.recordMissed(ctx, f.Name, next, busy.RunID, log)
		}
		return
	}
	if err != nil {
		log.Warn("trigger flow", zap.Error(err))
		return
	}
	log.Info("flow triggered", zap.Int64("run", r.ID), zap.Int64("spec_version", r.SpecVersion), zap.String("runtime", rt.String()))
}

// recordMissedTicks records each tick of rt that came due while run live
// was live and is not recorded yet: ticks after the live run's creation and
// after the flow's last recorded miss, so each is counted once however many
// passes (or schedulers) see it.
func (ft *flowTrigger) recordMissedTicks(ctx context.Context, f store.FlowState, rt engine.Runtime, live store.Run, now time.Time, log *zap.Logger) {
	t := rt.Next(live.CreatedAt)
	for i := 0; i < maxMissedPerPass && !t.IsZero() && !t.After(now); i++ {
		// The store keeps microseconds.
		t = t.Truncate(time.Microsecond)
		if f.LastMissedTick == nil || t.After(*f.LastMissedTick) {
			if !ft.recordMissed(ctx, f.Name, t, live.ID, log) {
				return
			}
		}
		next := rt.Next(t)
		if !next.After(t) {
			break
		}
		t = next
	}
	if !t.IsZero() && t.After(now) {
		ft.wake.noLaterThan(t)
	}
}

// recordMissed records one missed tick; false when the store failed.
func (ft *flowTrigger) recordMissed(ctx context.Context, flow string, tick time.Time, liveRun int64, log *zap.Logger) bool {
	fs, err := ft.store.RecordMissedTick(ctx, flow, tick)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("record missed flow tick", zap.Time("tick", tick), zap.Error(err))
		}
		return false
	}
	log.Warn("flow tick missed: the previous run is still live; the flow runs again when it ends",
		zap.Time("tick", tick), zap.Int64("live_run", liveRun), zap.Int64("missed_ticks", fs.MissedTicks))
	ft.noteMissedTick(ctx, flow, tick, liveRun)
	return true
}

// newFlowError notes err (nil: none) as the flow's latest trigger error and
// reports whether it differs from the one before, so a flow that cannot be
// triggered is logged once per cause rather than every pass.
func (ft *flowTrigger) newFlowError(flow string, err error) bool {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.flowErr[flow] == msg {
		return false
	}
	if msg == "" {
		delete(ft.flowErr, flow)
	} else {
		if ft.flowErr == nil {
			ft.flowErr = map[string]string{}
		}
		ft.flowErr[flow] = msg
	}
	return true
}

// nothingToMove reports whether a run of the flow would read nothing now:
// its source resumes from the watermark and no record follows it. Any
// doubt (an error, a source that starts over each run) says there is.
func (ft *flowTrigger) nothingToMove(ctx context.Context, job engine.Job, f store.FlowState) bool {
	pipe, err := job.Open(ctx, ft.env, nil)
	if err != nil || !pipe.Incremental() {
		return false
	}
	_, _, ok, err := pipe.Next(ctx, pipe.Start(f.Watermark), 1)
	return err == nil && !ok
}

func (ft *flowTrigger) idleAt(flow string) time.Time {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.idle[flow]
}

func (ft *flowTrigger) setIdle(flow string, at time.Time) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.idle == nil {
		ft.idle = map[string]time.Time{}
	}
	ft.idle[flow] = at
}

// activatedAt returns when the flow was last activated, when the store can
// tell: a flow's updated_at moves on activation and on watermark advances,
// and a watermark advance moves watermark_updated_at with it.
func activatedAt(f store.FlowState) (time.Time, bool) {
	if f.WatermarkUpdatedAt != nil && f.WatermarkUpdatedAt.Equal(f.UpdatedAt) {
		return time.Time{}, false
	}
	return f.UpdatedAt, !f.UpdatedAt.IsZero()
}
