package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/health"
	"github.com/dripflow/dripflow/pkg/store"
)

// fakeChecker answers every check with what it is set to, counting calls.
type fakeChecker struct {
	mu    sync.Mutex
	value float64 // the measured value, decided by health.Decide
	err   error
	calls int
}

func (f *fakeChecker) set(value float64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value, f.err = value, err
}

func (f *fakeChecker) Check(ctx context.Context, c store.HealthCheck) health.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return health.Result{Check: c, Err: f.err, Reason: c.Label() + " check failed: " + f.err.Error()}
	}
	ok, reason := health.Decide(c, f.value)
	return health.Result{Check: c, Healthy: ok, Value: f.value, Reason: reason}
}

func (f *fakeChecker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// timelineMessages returns the messages of the run's timeline.
func timelineMessages(t *testing.T, st store.Store, id int64) []string {
	t.Helper()
	evs, err := st.ListRunEvents(context.Background(), id, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Message)
	}
	return out
}

// A run whose check fails is started but held: no batch is planned or
// enqueued, the hold is on the run and its timeline, the check is not
// asked again within the interval; once it passes, planning resumes at
// once and the release is recorded. An erroring check holds with its error
// as the reason, and a changed reason keeps the hold's start.
func TestPlannerHoldsWhileUnhealthy(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	p, q := newTestPlanner(t, st, &fakePipeline{n: 100})
	fc := &fakeChecker{value: 12.34}
	p.health, p.healthInterval = fc, time.Hour
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 3,
		HealthChecks: []store.HealthCheck{{Kind: store.HealthReplicationLag, MaxSeconds: 5}}})
	// expire ends the interval the last result is cached for.
	expire := func() {
		rs := p.runs.get(r.ID)
		rs.mu.Lock()
		rs.health.checkedAt = time.Time{}
		rs.mu.Unlock()
	}

	p.advance(ctx, r)
	got := getRun(t, st, r.ID)
	if got.State != store.RunRunning || got.BatchesTotal() != 0 || len(q.enqueued()) != 0 {
		t.Fatalf("held run: %s with %d batches, tasks %v; want running with none", got.State, got.BatchesTotal(), q.enqueued())
	}
	if got.Held == nil || got.Held.Reason != "replication lag 12.3 s > 5 s" || got.Held.Check != "replication_lag" {
		t.Fatalf("held %+v, want the lag", got.Held)
	}
	since := got.Held.Since
	p.advance(ctx, got)
	if n := fc.count(); n != 1 {
		t.Errorf("checked %d times within the interval, want once", n)
	}
	if d := p.wake.next(); d < 59*time.Minute || d > time.Hour {
		t.Errorf("a held run asked to be looked at in %s, want when the 1h interval ends", d)
	}

	// The check errors: still held, the error is the reason, the hold's
	// start stays.
	expire()
	fc.set(0, errors.New("connection refused"))
	p.advance(ctx, getRun(t, st, r.ID))
	got = getRun(t, st, r.ID)
	if got.BatchesTotal() != 0 || got.Held == nil || !strings.Contains(got.Held.Reason, "connection refused") || !got.Held.Since.Equal(since) {
		t.Fatalf("an erroring check: %d batches, held %+v; want held since %v saying why", got.BatchesTotal(), got.Held, since)
	}

	expire()
	fc.set(0.5, nil)
	p.advance(ctx, getRun(t, st, r.ID))
	got = getRun(t, st, r.ID)
	if got.Held != nil || got.BatchesEnqueued != 3 || len(q.enqueued()) != 3 {
		t.Fatalf("healthy again: held %+v, %+v, tasks %v; want the window filled", got.Held, got.Counters, q.enqueued())
	}
	var held, released int
	for _, m := range timelineMessages(t, st, r.ID) {
		if strings.HasPrefix(m, "held: replication lag 12.3 s > 5 s") {
			held++
		}
		if strings.HasPrefix(m, "health ok, planning resumed") {
			released++
		}
	}
	if held != 1 || released != 1 {
		t.Errorf("timeline %q: %d holds and %d releases, want one of each", timelineMessages(t, st, r.ID), held, released)
	}

	// A full window asks nothing; a run that ends drops its hold.
	calls := fc.count()
	expire()
	p.advance(ctx, got)
	if fc.count() != calls {
		t.Errorf("a full window was checked")
	}
}

// A new leader goes on from the hold in the store: it releases it (and
// records the release) when the check passes.
func TestPlannerReleasesHoldOfPreviousLeader(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	r := newTestRun(t, st, store.RunOptions{BatchSize: 10, MaxInFlight: 2,
		HealthChecks: []store.HealthCheck{{Kind: store.HealthLockWaits}}})
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRunHold(ctx, r.ID, &store.RunHold{Reason: "lock waits 2 > 0", Check: "lock_waits", Since: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	p, q := newTestPlanner(t, st, &fakePipeline{n: 100})
	p.health = &fakeChecker{value: 0}
	p.advance(ctx, getRun(t, st, r.ID))
	got := getRun(t, st, r.ID)
	if got.Held != nil || len(q.enqueued()) != 2 {
		t.Fatalf("held %+v, tasks %v; want released and planning", got.Held, q.enqueued())
	}
	evs := timelineMessages(t, st, r.ID)
	if len(evs) == 0 || !strings.HasPrefix(evs[len(evs)-1], "health ok, planning resumed (held 1m") {
		t.Errorf("timeline %q, want the release last", evs)
	}
}
