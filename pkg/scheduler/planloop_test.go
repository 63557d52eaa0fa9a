package scheduler

import (
	"context"
	"maps"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
)

// A burst of events is one look at each run, a resume among them counted.
func TestCoalesce(t *testing.T) {
	ch := make(chan events.Event, 10)
	for _, ev := range []events.Event{{RunID: 2}, {RunID: 1, Resumed: true}, {RunID: 2}, {RunID: 1}} {
		ch <- ev
	}
	got, open := coalesce(events.Event{RunID: 1}, ch)
	if want := map[int64]bool{1: true, 2: false}; !maps.Equal(got, want) || open == nil {
		t.Fatalf("coalesce = %v (open %v), want %v and the channel kept", got, open != nil, want)
	}
	ch <- events.Event{RunID: 3}
	close(ch)
	got, open = coalesce(events.Event{RunID: 4}, ch)
	if want := map[int64]bool{3: false, 4: false}; !maps.Equal(got, want) || open != nil {
		t.Fatalf("coalesce = %v (open %v), want %v and the closed channel dropped", got, open != nil, want)
	}
}

// An event about a run moves it forward; a resumed run's lost tasks are
// looked for at once; a pass starts every due run.
func TestPlanLoopHandlesRuns(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, q := newTestPlanner(t, st, &fakePipeline{n: 100})
	var reconciled []int64
	l := &planLoop{store: st, planner: p, wake: p.wake, log: zaptest.NewLogger(t),
		flows:        &flowTrigger{store: st, jobs: nil, wake: p.wake, log: zaptest.NewLogger(t)},
		reconcileNow: func(ctx context.Context, r store.Run) { reconciled = append(reconciled, r.ID) },
		metrics:      passMetrics{queue: noStats{}}}
	r := newTestRun(t, st, store.RunOptions{MaxInFlight: 1})
	l.handleRun(ctx, r.ID, false)
	if got := getRun(t, st, r.ID); got.State != store.RunRunning || len(q.enqueued()) != 1 || len(reconciled) != 0 {
		t.Fatalf("after an event: run %s, %d tasks, reconciled %v; want running with 1 task, none reconciled", got.State, len(q.enqueued()), reconciled)
	}
	l.handleRun(ctx, r.ID, true)
	if len(reconciled) != 1 {
		t.Fatalf("a resume reconciled %v, want run %d", reconciled, r.ID)
	}
	l.handleRun(ctx, 9999, false) // gone: nothing happens

	r2 := newTestRun(t, st, store.RunOptions{MaxInFlight: 1})
	l.pass(ctx)
	if got := getRun(t, st, r2.ID); got.State != store.RunRunning {
		t.Fatalf("a pass left run 2 %s, want running", got.State)
	}
}
