package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// SIGTERM drains: batches in flight finish before the worker exits, so none
// needs a second attempt.
func TestProcessWorkerSIGTERMDrains(t *testing.T) {
	c := newCluster(t)
	const items, size = 10_000, 500
	c.seedItems(items)
	c.scheduler()
	w := c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), Params: json.RawMessage(`{"sleep_ms":400}`)})
	c.waitFor("4 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 4 })
	c.waitFor("batches in flight", 10*time.Second, func() bool { return c.run(r.ID).BatchesRunning > 0 })
	w.stop(t)
	if code := w.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("worker exited with %d after SIGTERM, want 0", code)
	}
	if got := c.run(r.ID); got.BatchesRunning != 0 {
		t.Fatalf("%d batches still running after the worker drained", got.BatchesRunning)
	}
	c.worker(4)
	r = c.waitDone(r.ID, 2*time.Minute)
	c.assertExactlyOnce(r, items, size)
	if n := c.batchesWithAttempts(r.ID, 2); n != 0 {
		t.Errorf("%d batches needed a second attempt after a graceful stop", n)
	}
}

// The error budget stops a run early; what was not planned stays unplanned.
func TestProcessErrorBudget(t *testing.T) {
	c := newCluster(t)
	const items, size = 50_000, 100
	c.seedItems(items)
	if err := c.db.Exec("UPDATE e2e_items SET poison = true WHERE id IN (50, 150, 250, 350)").Error; err != nil {
		t.Fatal(err)
	}
	c.scheduler()
	c.worker(2)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), MaxAttempts: ptr(1), ErrorBudget: ptr(2),
		Params: json.RawMessage(`{"sleep_ms":20}`)})
	r = c.waitDone(r.ID, time.Minute)
	if r.State != store.RunFailed || !strings.Contains(r.Error, "error budget") {
		t.Fatalf("run %s (%q), want failed by the error budget", r.State, r.Error)
	}
	if r.BatchesFailed < 2 || r.BatchesTotal() >= items/size {
		t.Fatalf("counters %+v: want ≥ 2 failed and planning stopped early", r.Counters)
	}
	// Batches in flight when the run failed may still finish; after them,
	// none starts.
	c.waitFor("in-flight batches to finish", 30*time.Second, func() bool { r = c.run(r.ID); return r.BatchesRunning == 0 })
	time.Sleep(time.Second)
	if again := c.run(r.ID); again.BatchesSucceeded+again.BatchesFailed != r.BatchesSucceeded+r.BatchesFailed {
		t.Fatalf("batches kept finishing after the run failed and its in-flight batches ended: %+v, then %+v", r.Counters, again.Counters)
	}
}

// Throttling: rows_per_second spaces batch starts by batch_size/rate.
func TestProcessRowsPerSecond(t *testing.T) {
	c := newCluster(t)
	const items, size = 1000, 100
	c.seedItems(items)
	c.scheduler()
	c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), RowsPerSecond: ptr(500)})
	r = c.waitDone(r.ID, time.Minute)
	c.assertExactlyOnce(r, items, size)
	page, err := c.st.ListBatches(context.Background(), r.ID, store.BatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// 100 rows at 500 rows/s: one batch every 200ms. The scheduler paces
	// the enqueues; a busy worker can start one batch late and the next on
	// time, so check the spread over the run rather than each pair.
	bs := page.Items
	if span := bs[len(bs)-1].StartedAt.Sub(*bs[0].StartedAt); span < time.Duration(len(bs)-1)*180*time.Millisecond {
		t.Errorf("%d batches started within %s; at 500 rows/s they need at least %s", len(bs), span, time.Duration(len(bs)-1)*200*time.Millisecond)
	}
	if took := r.FinishedAt.Sub(*r.StartedAt); took < 1700*time.Millisecond {
		t.Errorf("1000 rows at 500 rows/s took %s, want ≥ 1.8s", took)
	}
}

// A panic in user code is a batch error with its stack, not a crash.
func TestProcessPanicIsABatchError(t *testing.T) {
	c := newCluster(t)
	const items, size = 5_000, 500
	c.seedItems(items)
	if err := c.db.Exec("UPDATE e2e_items SET poison = true, val = 'panic' WHERE id = 777").Error; err != nil {
		t.Fatal(err)
	}
	c.scheduler()
	w := c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxAttempts: ptr(1)})
	r = c.waitDone(r.ID, time.Minute)
	if r.State != store.RunFailed || r.BatchesFailed != 1 || r.BatchesSucceeded != items/size-1 {
		t.Fatalf("run %s %+v, want failed with exactly the panicking batch failed", r.State, r.Counters)
	}
	b, err := c.st.GetBatch(context.Background(), r.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.Error, "panic: panicking on row 777") || !strings.Contains(b.ErrorStack, "e2edefs") {
		t.Fatalf("batch error %q, stack %q", b.Error, b.ErrorStack)
	}
	select {
	case <-w.done:
		t.Fatal("the worker crashed")
	default:
	}
}

// A run scheduled for later starts when its time comes, not before.
func TestProcessStartAt(t *testing.T) {
	c := newCluster(t)
	c.seedItems(2000)
	c.scheduler()
	c.worker(2)
	at := time.Now().Add(3 * time.Second)
	r := c.createRun(control.NewRun{BatchSize: ptr(500), StartAt: &at})
	time.Sleep(1500 * time.Millisecond)
	if got := c.run(r.ID); got.State != store.RunScheduled || got.BatchesTotal() != 0 {
		t.Fatalf("1.5s before its start: %s with %d batches", got.State, got.BatchesTotal())
	}
	r = c.waitDone(r.ID, time.Minute)
	c.assertExactlyOnce(r, 2000, 500)
	if r.StartedAt.Before(at) {
		t.Fatalf("started at %s, before start_at %s", r.StartedAt, at)
	}
	if late := r.StartedAt.Sub(at); late > 2*time.Second {
		t.Errorf("started %s after start_at", late)
	}
}
