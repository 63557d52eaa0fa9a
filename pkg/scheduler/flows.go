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
		next := trig.Runtime().Next(last)
		if next.IsZero() {
			continue
		}
		if now.Before(next) {
			s.wakeNoLaterThan(next)
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
