package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// The scheduler's decisions on a run's timeline (see package timeline):
// that it started the run, that pacing holds its batches back, that a
// flow's tick was missed while the run was live, that it created a flow's
// run, and how the run ended. Each is one call from where the decision is
// made (lifecycle.go, flows.go). A store without AppendRunEvent (a test's
// fake) records nothing.

// appender is the store's timeline, or nil.
func appender(st any) timeline.Appender {
	a, _ := st.(timeline.Appender)
	return a
}

// throttleNoted remembers, per planner and run, the pacing reasons already
// on the run's timeline, so a paced run costs no store call per batch: the
// store's event key makes the event once per run anyway (also across
// schedulers and restarts); this only saves the round trips.
var throttleNoted sync.Map // throttleKey -> struct{}

type throttleKey struct {
	p      *runPlanner
	run    int64
	reason string
}

// noteStarted records that the scheduler started run r (it was
// scheduled). Keyed: a run starts once.
func (p *runPlanner) noteStarted(ctx context.Context, r store.Run) {
	msg := "started by the scheduler"
	if r.StartAt != nil {
		msg = fmt.Sprintf("started by the scheduler at its start time %s", r.StartAt.UTC().Format(time.RFC3339))
	}
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventStarted, Actor: timeline.Scheduler,
		Message: msg, Key: "started"})
}

// noteFinished records how run r ended, with its counts, after the
// scheduler moved it to a terminal state.
func (p *runPlanner) noteFinished(ctx context.Context, r store.Run) {
	if !r.State.Terminal() {
		return
	}
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventFinished, Actor: timeline.Scheduler,
		Message: timeline.Finished(r)})
}

// noteThrottled records, once per run and reason, that the run's pacing
// (rows_per_second or sleep) holds its next batch back.
func (p *runPlanner) noteThrottled(ctx context.Context, r store.Run) {
	reason, msg := throttleReason(r)
	if reason == "" {
		return
	}
	k := throttleKey{p: p, run: r.ID, reason: reason}
	if _, done := throttleNoted.Load(k); done {
		return
	}
	throttleNoted.Store(k, struct{}{})
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Actor: timeline.Scheduler,
		Message: msg, Key: "throttled:" + reason})
}

// throttleReason says which of the run's limits sets its pacing.
func throttleReason(r store.Run) (reason, msg string) {
	o := r.Options
	var rpsGap time.Duration
	if o.RowsPerSecond > 0 {
		rpsGap = time.Duration(float64(o.BatchSize) / float64(o.RowsPerSecond) * float64(time.Second))
	}
	switch {
	case rpsGap > 0 && rpsGap >= o.Sleep:
		return "rows_per_second", fmt.Sprintf("throttled: rows_per_second %s holds batches back — one batch of %s rows starts every %s",
			timeline.Count(int64(o.RowsPerSecond)), timeline.Count(int64(o.BatchSize)), rpsGap.Round(time.Millisecond))
	case o.Sleep > 0:
		return "sleep", fmt.Sprintf("throttled: sleep %s between batches holds batches back", o.Sleep)
	}
	return "", ""
}

// forgetTimeline drops what the planner remembers of run id's timeline.
func (p *runPlanner) forgetTimeline(id int64) {
	throttleNoted.Range(func(k, _ any) bool {
		if tk := k.(throttleKey); tk.p == p && tk.run == id {
			throttleNoted.Delete(k)
		}
		return true
	})
}

// createdOnTick gives control.NewRun.Created for a flow's run the
// scheduler creates on a tick of the flow's runtime.
func createdOnTick(runtime string) func(store.Run) store.RunEvent {
	return func(r store.Run) store.RunEvent {
		return store.RunEvent{RunID: r.ID, Kind: store.EventCreated, Actor: timeline.Scheduler,
			Message: "created on a tick of the flow's runtime (" + runtime + "): " + timeline.Created(r), Key: "created"}
	}
}

// noteMissedTick records on the live run of a flow that a tick of the
// flow's runtime came due while it was still live. Keyed by the tick.
func (ft *flowTrigger) noteMissedTick(ctx context.Context, flow string, tick time.Time, liveRun int64) {
	at := tick.UTC().Format(time.RFC3339Nano)
	timeline.Record(ctx, appender(ft.store), ft.log, store.RunEvent{RunID: liveRun, Kind: store.EventNote, Actor: timeline.Scheduler,
		Message: fmt.Sprintf("flow tick missed: %s came due at %s while this run was live; the flow runs again when it ends", flow, at),
		Key:     "missed:" + at})
}
