package scheduler

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
)

// rescueDeadWorkers ends the claims of workers whose heartbeat stopped (a
// worker killed with SIGKILL, a host gone), so their batches run again
// within seconds instead of after their claim lease, which stays the
// backstop. A running run's batch gets a rescue task at once; a cancelling
// run's is cancelled. A dead worker is forgotten once all its claims are
// ended.
func (s *Scheduler) rescueDeadWorkers(ctx context.Context) {
	ws, err := s.presence.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list workers", zap.Error(err))
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
	var runs []store.Run
	f := store.RunFilter{States: []store.RunState{store.RunRunning, store.RunPaused, store.RunCancelling}, Limit: store.MaxLimit}
	for {
		page, err := s.cfg.Store.ListRuns(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("rescue dead workers: list runs", zap.Error(err))
			}
			return
		}
		runs = append(runs, page.Items...)
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	for _, id := range dead {
		log := s.log.With(zap.String("worker", id))
		rescued, complete := 0, true
		for _, r := range runs {
			if r.BatchesRunning == 0 {
				continue
			}
			bs, err := s.cfg.Store.ExpireClaims(ctx, r.ID, id)
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
					s.requeue(ctx, r, b, true, rlog)
				}
			}
			if r.State == store.RunCancelling {
				s.advance(ctx, r)
			}
		}
		if !complete {
			continue
		}
		if err := s.presence.Forget(ctx, id); err != nil {
			log.Warn("forget dead worker", zap.Error(err))
			continue
		}
		log.Warn("worker stopped heart-beating; its claims were ended", zap.Int("batches", rescued))
	}
}
