package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func kinds(t *testing.T, st store.Store, id int64) ([]store.RunEvent, []string) {
	t.Helper()
	evs, err := st.ListRunEvents(context.Background(), id, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Kind)
	}
	return evs, out
}

// The planner writes that it started a run, that its pacing holds batches
// back (once, however many passes it holds them), and how the run ended,
// with its counts.
func TestPlannerTimeline(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, _ := newTestPlanner(t, st, &fakePipeline{n: 30})
	// 10 rows a batch at 20 rows/s: one batch every 500ms.
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 3, RowsPerSecond: 20})
	for i := 0; i < 5; i++ {
		p.advance(ctx, getRun(t, st, r.ID))
	}
	evs, got := kinds(t, st, r.ID)
	if strings.Join(got, " ") != "started throttled" {
		t.Fatalf("after 5 passes of a paced run: %v, want [started throttled]", got)
	}
	if evs[0].Actor != "scheduler" || evs[1].Actor != "scheduler" || evs[1].Key != "throttled:rows_per_second" ||
		!strings.Contains(evs[1].Message, "rows_per_second 20 holds batches back — one batch of 10 rows starts every 500ms") {
		t.Fatalf("events: %+v", evs)
	}
	// Let every batch start and finish.
	deadline := time.Now().Add(20 * time.Second)
	for cur := getRun(t, st, r.ID); !cur.State.Terminal(); cur = getRun(t, st, r.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("run did not end: %s %+v", cur.State, cur.Counters)
		}
		page, err := st.ListBatches(ctx, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchEnqueued}})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Items {
			complete(t, st, r.ID, b.Seq)
		}
		time.Sleep(100 * time.Millisecond)
		p.advance(ctx, getRun(t, st, r.ID))
	}
	evs, got = kinds(t, st, r.ID)
	if strings.Join(got, " ") != "started throttled finished" {
		t.Fatalf("after the run ended: %v, want [started throttled finished]", got)
	}
	if m := evs[2].Message; !strings.HasPrefix(m, "succeeded: 3 batches succeeded; rows read 3, written 3, skipped 0") {
		t.Fatalf("finished event %q", m)
	}
}

// A run that fails by its error budget says so on its finished event.
func TestPlannerTimelineErrorBudget(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, _ := newTestPlanner(t, st, &fakePipeline{n: 100})
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 2, ErrorBudget: 1})
	p.advance(ctx, r)
	fail(t, st, r.ID, 1)
	p.advance(ctx, getRun(t, st, r.ID))
	evs, got := kinds(t, st, r.ID)
	if strings.Join(got, " ") != "started finished" || !strings.HasPrefix(evs[1].Message, "failed: 0 batches succeeded, 1 failed") ||
		!strings.Contains(evs[1].Message, "error budget is 1") {
		t.Fatalf("events %v: %+v", got, evs)
	}
}
