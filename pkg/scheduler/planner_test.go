package scheduler

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// A scheduled run is started, its first batch planned and queued on its
// own, then the window filled to max_in_flight; a finished batch frees a
// slot for the next one.
func TestPlannerStartsRunAndKeepsWindowFull(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, q := newTestPlanner(t, st, &fakePipeline{n: 100})
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 3})

	p.advance(ctx, r)
	got := getRun(t, st, r.ID)
	if got.State != store.RunRunning || got.BatchesEnqueued != 3 || got.BatchesTotal() != 3 || got.PlanCursor != "30" {
		t.Fatalf("after the first look: %s, %+v, cursor %q; want running with 3 batches enqueued up to 30", got.State, got.Counters, got.PlanCursor)
	}
	if want := []string{"1:1", "1:2", "1:3"}; !sameSet(q.enqueued(), want) {
		t.Fatalf("tasks %v, want %v", q.enqueued(), want)
	}
	p.advance(ctx, got) // a full window: nothing to do
	if n := len(q.enqueued()); n != 3 {
		t.Fatalf("a look at a full window enqueued %d tasks in all, want still 3", n)
	}
	complete(t, st, r.ID, 1)
	p.advance(ctx, getRun(t, st, r.ID))
	if got := getRun(t, st, r.ID); got.BatchesEnqueued != 3 || got.BatchesSucceeded != 1 || got.PlanCursor != "40" {
		t.Fatalf("after batch 1 ended: %+v, cursor %q; want 3 enqueued, 1 succeeded, planned to 40", got.Counters, got.PlanCursor)
	}
	if got := q.enqueued(); got[len(got)-1] != "1:4" {
		t.Fatalf("tasks %v, want batch 4's last", got)
	}
}

// A run whose batches all succeeded ends succeeded, and the planner forgets
// it; one with a failed batch ends failed saying how many.
func TestPlannerFinishesRun(t *testing.T) {
	for _, tt := range []struct {
		name      string
		failSeq   int64
		wantState store.RunState
		wantError string
	}{
		{"all succeeded", 0, store.RunSucceeded, ""},
		{"one failed", 2, store.RunFailed, "1 of 2 batches failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newTestStore(t)
			p, _ := newTestPlanner(t, st, &fakePipeline{n: 20})
			r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 5})
			p.advance(ctx, r)
			for seq := int64(1); seq <= 2; seq++ {
				if seq == tt.failSeq {
					fail(t, st, r.ID, seq)
				} else {
					complete(t, st, r.ID, seq)
				}
			}
			p.advance(ctx, getRun(t, st, r.ID))
			got := getRun(t, st, r.ID)
			if got.State != tt.wantState || !strings.Contains(got.Error, tt.wantError) {
				t.Fatalf("run %s (%q), want %s (%q)", got.State, got.Error, tt.wantState, tt.wantError)
			}
			if n := p.runs.len(); n != 0 {
				t.Errorf("planner still holds state of %d runs after the run ended", n)
			}
		})
	}
}

// An incremental run moves its flow's watermark to its last key when it
// succeeds, and the next run plans from there.
func TestPlannerAdvancesWatermark(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	if _, err := st.UpsertDefinition(ctx, store.Definition{Name: "inc", Kind: store.KindFlow}); err != nil {
		t.Fatal(err)
	}
	p, _ := newTestPlanner(t, st, &fakePipeline{n: 15, incremental: true})
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "inc", Kind: store.KindFlow, CreatedBy: "test",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 5}})
	if err != nil {
		t.Fatal(err)
	}
	p.advance(ctx, r)
	complete(t, st, r.ID, 1)
	complete(t, st, r.ID, 2)
	p.advance(ctx, getRun(t, st, r.ID))
	if got := getRun(t, st, r.ID); got.State != store.RunSucceeded {
		t.Fatalf("run %s (%q), want succeeded", got.State, got.Error)
	}
	fs, err := st.GetFlow(ctx, "inc")
	if err != nil {
		t.Fatal(err)
	}
	if fs.Watermark != "15" {
		t.Fatalf("watermark %q after the run planned up to 15", fs.Watermark)
	}
}

// Reaching the error budget fails the run at once, batches still to plan.
func TestPlannerErrorBudget(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, _ := newTestPlanner(t, st, &fakePipeline{n: 100})
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 2, ErrorBudget: 1})
	p.advance(ctx, r)
	fail(t, st, r.ID, 1)
	p.advance(ctx, getRun(t, st, r.ID))
	got := getRun(t, st, r.ID)
	if got.State != store.RunFailed || !strings.Contains(got.Error, "error budget is 1") {
		t.Fatalf("run %s (%q), want failed by its error budget", got.State, got.Error)
	}
}

// A run whose pipeline cannot open for good (a connection not configured
// here) fails saying so rather than waiting; a passing error leaves it
// running.
func TestPlannerCannotPlan(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		wantState store.RunState
	}{
		{"unknown connection", engine.ErrUnknownConnection, store.RunFailed},
		{"database down", errors.New("connection refused"), store.RunRunning},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newTestStore(t)
			open := func(ctx context.Context, r store.Run) (engine.Pipeline, error) { return nil, tt.err }
			p := newRunPlanner(st, newFakeQueue(), open, &wakeup{}, zaptest.NewLogger(t))
			r := newTestRun(t, st, store.RunOptions{})
			p.advance(ctx, r)
			got := getRun(t, st, r.ID)
			if got.State != tt.wantState {
				t.Fatalf("run %s (%q), want %s", got.State, got.Error, tt.wantState)
			}
			if tt.wantState == store.RunFailed && !strings.Contains(got.Error, "cannot plan") {
				t.Fatalf("run's error %q does not say it cannot plan", got.Error)
			}
		})
	}
}

// An unbounded source's run plans at most MaxBatches and ends.
func TestPlannerPlanLimit(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, _ := newTestPlanner(t, st, limitedPipeline{&fakePipeline{n: 1000, maxBatches: 3}})
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 10})
	p.advance(ctx, r)
	got := getRun(t, st, r.ID)
	if got.BatchesTotal() != 3 || !got.PlanDone {
		t.Fatalf("%d batches planned, plan done %v; want 3 and done", got.BatchesTotal(), got.PlanDone)
	}
}

// A run that is not due yet is left scheduled, and the planner asks to be
// woken at its start.
func TestPlannerWaitsForStartAt(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, q := newTestPlanner(t, st, &fakePipeline{n: 10})
	at := time.Now().Add(time.Hour)
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "later", Kind: store.KindBackfill, CreatedBy: "test", StartAt: &at,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p.advance(ctx, r)
	if got := getRun(t, st, r.ID); got.State != store.RunScheduled || len(q.enqueued()) != 0 {
		t.Fatalf("run %s with %d tasks an hour before its start", got.State, len(q.enqueued()))
	}
	if d := p.wake.next(); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("wake-up in %v, want at the run's start in an hour", d)
	}
}

// A paced run starts one batch now and holds the next back until its turn,
// asking to be woken then; the held batch waits as pending.
func TestPlannerPacesRun(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, q := newTestPlanner(t, st, &fakePipeline{n: 100})
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 3, Sleep: time.Hour})
	p.advance(ctx, r)
	got := getRun(t, st, r.ID)
	if got.BatchesEnqueued != 1 || got.BatchesPending != 2 || len(q.enqueued()) != 1 {
		t.Fatalf("paced run: %+v with %d tasks; want 1 enqueued and 2 pending", got.Counters, len(q.enqueued()))
	}
	if d := p.wake.next(); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("wake-up in %v, want at the next batch's turn in an hour", d)
	}
	p.advance(ctx, got)
	if n := len(q.enqueued()); n != 1 {
		t.Fatalf("a second look before the batch's turn enqueued %d tasks in all, want 1", n)
	}
}

// A failed count is tried again (it used to be given up for good once the
// run was marked counted); a count that succeeded, or a source that cannot
// be counted, is not repeated.
func TestCountRetriedAfterFailure(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	pipe := &fakePipeline{n: 42, counts: []error{errors.New("statement timeout")}}
	p, _ := newTestPlanner(t, st, pipe)
	p.countRetry = time.Hour
	r := newTestRun(t, st, store.RunOptions{})
	rs := p.runs.get(r.ID)
	log := zaptest.NewLogger(t)

	wait(t, p.countOnce(ctx, rs, r, pipe, log))
	if got := getRun(t, st, r.ID); got.Total >= 0 {
		t.Fatalf("total %d after a failed count", got.Total)
	}
	if snap := p.countOnce(ctx, rs, r, pipe, log); snap != nil {
		t.Fatal("counted again before the retry was due")
	}
	rs.count.retryAt = time.Now().Add(-time.Second) // the hour passed
	wait(t, p.countOnce(ctx, rs, r, pipe, log))
	if got := getRun(t, st, r.ID); got.Total != 42 {
		t.Fatalf("total %d after the retried count, want 42", got.Total)
	}
	if snap := p.countOnce(ctx, rs, r, pipe, log); snap != nil {
		t.Fatal("counted again after a count succeeded")
	}
	if n := pipe.countCalls(); n != 2 {
		t.Fatalf("%d counts, want 2", n)
	}

	cannot := &fakePipeline{n: 1, counts: []error{engine.ErrCannotCount}}
	r2 := newTestRun(t, st, store.RunOptions{})
	rs2 := p.runs.get(r2.ID)
	wait(t, p.countOnce(ctx, rs2, r2, cannot, log))
	rs2.count.retryAt = time.Time{}
	if snap := p.countOnce(ctx, rs2, r2, cannot, log); snap != nil {
		t.Fatal("counted again a source that cannot be counted")
	}
}

func wait(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	if ch == nil {
		t.Fatal("no count started")
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("count did not end within 10s")
	}
	// The count's goroutine records its end before it closes ch only when
	// no snapshot was taken; the fake pipeline takes none.
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
