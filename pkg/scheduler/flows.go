package scheduler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// SchedulerIdentity is the created_by of runs the scheduler starts.
const SchedulerIdentity = "scheduler"

// triggerFlows starts a run of every active flow whose runtime says it is
// time, unless its previous run is still going.
func (s *Scheduler) triggerFlows(ctx context.Context) {
	flows, err := s.cfg.Store.ListFlows(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list flows", zap.Error(err))
		}
		return
	}
	now := time.Now()
	for _, f := range flows {
		if !f.Active {
			continue
		}
		job, ok := s.cfg.Registry.Lookup(f.Name)
		if !ok {
			continue
		}
		trig, ok := job.(engine.Triggered)
		if !ok {
			continue
		}
		var last time.Time
		page, err := s.cfg.Store.ListRuns(ctx, store.RunFilter{Definition: f.Name, Limit: 1})
		if err != nil {
			s.log.Warn("last run of flow", zap.String("definition", f.Name), zap.Error(err))
			continue
		}
		if len(page.Items) > 0 {
			if !page.Items[0].State.Terminal() {
				continue
			}
			last = page.Items[0].CreatedAt
		}
		repeats := !trig.Runtime().Next(now).IsZero()
		if at, ok := activatedAt(f); !repeats && ok && last.Before(at) {
			// A runtime that runs once runs once per activation: runs
			// from before this activation (a trigger by hand, an earlier
			// activation) do not count.
			last = time.Time{}
		}
		if at := s.idleAt(f.Name); repeats && at.After(last) {
			// The last tick found nothing to move: the next one counts
			// from it, as if it had run.
			last = at
		}
		next := trig.Runtime().Next(last)
		if next.IsZero() {
			continue
		}
		if now.Before(next) {
			s.wakeNoLaterThan(next)
			continue
		}
		if repeats && s.nothingToMove(ctx, job, f) {
			// A run now would read nothing: skip the tick rather than fill
			// the runs list with empty runs.
			s.setIdle(f.Name, now)
			s.log.Debug("flow tick skipped: nothing new after the watermark", zap.String("definition", f.Name))
			continue
		}
		r, err := s.ctl.CreateRun(ctx, control.NewRun{Definition: f.Name, CreatedBy: SchedulerIdentity})
		if err != nil {
			s.log.Warn("trigger flow", zap.String("definition", f.Name), zap.Error(err))
			continue
		}
		s.log.Info("flow triggered", zap.String("definition", f.Name), zap.Int64("run", r.ID), zap.String("runtime", trig.Runtime().String()))
	}
}

// nothingToMove reports whether a run of the flow would read nothing now:
// its source resumes from the watermark and no record follows it. Any
// doubt (an error, a source that starts over each run) says there is.
func (s *Scheduler) nothingToMove(ctx context.Context, job engine.Job, f store.FlowState) bool {
	pipe, err := job.Open(ctx, engine.Env{DB: s.cfg.DB, Logger: s.log, Resources: s.cfg.Resources}, nil)
	if err != nil || !pipe.Incremental() {
		return false
	}
	_, _, ok, err := pipe.Next(ctx, pipe.Start(f.Watermark), 1)
	return err == nil && !ok
}

func (s *Scheduler) idleAt(flow string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idle[flow]
}

func (s *Scheduler) setIdle(flow string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle[flow] = at
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
