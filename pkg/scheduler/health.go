package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/health"
	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// The database-health throttle: before the planner enqueues a run's next
// batches it evaluates the run's health checks (at most once per
// Config.HealthInterval, the result cached in the run's runState). While a
// check fails — or cannot be evaluated: a check that errors counts as
// failing, its error as the reason — the run is held: it stays running,
// batches in flight finish, no new one is enqueued, and the planner looks
// again after the interval. A check that can never run (its kind is not
// supported on its database, its connection is not configured) fails the
// run instead, saying why.
//
// The hold is recorded where the web process reads it: on the run in the
// store (store.Run.Held, written when the hold starts, when its reason
// changes and when it ends), on the run's timeline (once per hold and once
// per release), and in the metrics dripflow_run_health_held and
// dripflow_run_health_held_seconds_total.

// healthChecker evaluates one check (health.Checker).
type healthChecker interface {
	Check(ctx context.Context, c store.HealthCheck) health.Result
}

// holdRecorder is the store's SetRunHold; a store without it (a test's
// fake) keeps holds in the scheduler only.
type holdRecorder interface {
	SetRunHold(ctx context.Context, id int64, h *store.RunHold) error
}

// healthState is a run's last health evaluation.
type healthState struct {
	loaded    bool           // held was taken from the run as the store had it
	checkedAt time.Time      // zero: never checked by this leader
	held      *store.RunHold // nil: planning is not held
	unsaved   bool           // held is not in the store yet (its write failed)
	counted   time.Time      // held seconds are counted up to here
}

// healthy reports whether the run's checks let the planner enqueue more
// of its batches now; ended says the run was failed because a check can
// never run.
func (p *runPlanner) healthy(ctx context.Context, st *runState, r store.Run, log *zap.Logger) (ok, ended bool) {
	if p.health == nil {
		return true, false
	}
	now := time.Now()
	st.mu.Lock()
	hs := st.health
	if !hs.loaded {
		// A new leader (or a restarted scheduler) goes on from the hold
		// the store has, so a release is still recorded.
		hs.loaded, hs.held, hs.counted = true, r.Held, now
	}
	st.mu.Unlock()
	if !hs.checkedAt.IsZero() && now.Sub(hs.checkedAt) < p.healthInterval {
		if hs.held != nil {
			p.wake.noLaterThan(hs.checkedAt.Add(p.healthInterval))
		}
		return hs.held == nil, false
	}

	results := p.checkHealth(ctx, r.Options.HealthChecks)
	if ctx.Err() != nil {
		return false, false // the leader stopped: not the database's fault
	}
	for _, res := range results {
		if errors.Is(res.Err, health.ErrUnsupported) || errors.Is(res.Err, engine.ErrUnknownConnection) {
			msg := fmt.Sprintf("cannot check health: %s: %v", res.Check.Label(), res.Err)
			if err := p.endRun(ctx, r, store.RunFailed, msg, log); err != nil {
				log.Warn("fail run whose health check cannot run", zap.Error(err))
				return false, false
			}
			log.Warn("run failed: health check cannot run", zap.String("check", res.Check.Label()), zap.Error(res.Err))
			return false, true
		}
	}
	exportHealth(r, results)
	var failing *health.Result
	for i := range results {
		if !results[i].Healthy {
			failing = &results[i]
			break
		}
	}

	prev := hs.held
	if prev != nil {
		from := hs.counted
		if prev.Since.After(from) {
			from = prev.Since
		}
		// A gap longer than a few intervals is time the planner did not
		// look (the run was paused, another scheduler led): not counted.
		if d := min(now.Sub(from), 3*p.healthInterval); d > 0 {
			metrics.RunHealthHeldSeconds.WithLabelValues(r.Definition).Add(d.Seconds())
		}
	}
	hs.counted = now
	hs.checkedAt = now
	switch {
	case failing == nil && prev != nil:
		if p.recordHold(ctx, r, nil, log) {
			hs.held = nil
			if !hs.unsaved {
				p.noteReleased(ctx, r, *prev, now)
			}
			hs.unsaved = false
			log.Info("health ok, planning resumed", zap.String("check", prev.Check), zap.Duration("held", now.Sub(prev.Since)))
		}
	case failing != nil && (prev == nil || hs.unsaved):
		since := now
		if prev != nil {
			since = prev.Since
		}
		h := store.RunHold{Reason: failing.Reason, Check: failing.Check.Label(), Since: since}.Normalize()
		hs.held = &h // held whether or not the store takes it
		hs.unsaved = !p.recordHold(ctx, r, &h, log)
		if !hs.unsaved {
			p.noteHeld(ctx, r, h)
			log.Warn("planning held: database unhealthy", zap.String("check", h.Check), zap.String("reason", h.Reason))
		}
	case failing != nil && (failing.Reason != prev.Reason || failing.Check.Label() != prev.Check):
		h := store.RunHold{Reason: failing.Reason, Check: failing.Check.Label(), Since: prev.Since}.Normalize()
		if p.recordHold(ctx, r, &h, log) {
			hs.held = &h
		}
	}
	st.mu.Lock()
	st.health = hs
	st.mu.Unlock()
	if failing != nil {
		p.wake.noLaterThan(now.Add(p.healthInterval))
	}
	return failing == nil, false
}

// checkHealth evaluates every check at once (each bounded by the checker's
// timeout).
func (p *runPlanner) checkHealth(ctx context.Context, checks []store.HealthCheck) []health.Result {
	results := make([]health.Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = p.health.Check(ctx, c) })
	}
	wg.Wait()
	return results
}

// recordHold writes the run's hold to the store (nil clears it) and
// reports whether it was written.
func (p *runPlanner) recordHold(ctx context.Context, r store.Run, h *store.RunHold, log *zap.Logger) bool {
	rec, ok := p.store.(holdRecorder)
	if !ok {
		return true
	}
	if err := rec.SetRunHold(ctx, r.ID, h); err != nil {
		if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
			log.Warn("record health hold", zap.Error(err))
		}
		return false
	}
	return true
}

// forgetHealth clears the hold of a run that ended (the store's, so the run
// does not read as held) and its gauges.
func (p *runPlanner) forgetHealth(ctx context.Context, r store.Run) {
	if r.Held != nil {
		p.recordHold(ctx, r, nil, p.log)
	}
}

// noteHeld records on the run's timeline that a failing health check holds
// its planning; keyed by when the hold started, so once per hold.
func (p *runPlanner) noteHeld(ctx context.Context, r store.Run, h store.RunHold) {
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Actor: timeline.Scheduler,
		Message: "held: " + h.Reason + " — no new batch is enqueued until the database is healthy again",
		Key:     "held:" + h.Since.UTC().Format(time.RFC3339Nano)})
}

// noteReleased records that the hold that started at h.Since ended.
func (p *runPlanner) noteReleased(ctx context.Context, r store.Run, h store.RunHold, now time.Time) {
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventNote, Actor: timeline.Scheduler,
		Message: fmt.Sprintf("health ok, planning resumed (held %s by %s)", now.Sub(h.Since).Round(100*time.Millisecond), h.Check),
		Key:     "health-ok:" + h.Since.UTC().Format(time.RFC3339Nano)})
}

// exportHealth sets the run's health gauges: 1 for a failing check, 0 for
// a passing one.
func exportHealth(r store.Run, results []health.Result) {
	id := strconv.FormatInt(r.ID, 10)
	for _, res := range results {
		v := 0.0
		if !res.Healthy {
			v = 1
		}
		metrics.RunHealthHeld.WithLabelValues(id, r.Definition, res.Check.Label()).Set(v)
	}
}
