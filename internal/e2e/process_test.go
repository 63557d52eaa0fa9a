package e2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// A 200k-row backfill through a scheduler process and two worker processes.
func TestProcessBackfill200k(t *testing.T) {
	c := newCluster(t)
	const items = 200_000
	c.seedItems(items)
	sch := c.scheduler()
	w1 := c.worker(4)
	w2 := c.worker(4)
	start := time.Now()
	r := c.createRun(control.NewRun{BatchSize: ptr(1000), MaxInFlight: ptr(8)})
	r = c.waitDone(r.ID, 5*time.Minute)
	t.Logf("200k rows in %s", time.Since(start).Round(time.Millisecond))
	c.assertExactlyOnce(r, items, 1000)
	if r.Total != items || r.TotalEstimated {
		t.Errorf("total %d (estimated %v), want exactly %d", r.Total, r.TotalEstimated, items)
	}
	// The workers' metrics add up to the run.
	var succeeded, rows float64
	for _, w := range []*proc{w1, w2} {
		m := c.metrics(w)
		succeeded += m[`dripflow_batches_total{definition="e2e_bump",outcome="succeeded"}`]
		rows += m[`dripflow_rows_total{definition="e2e_bump",kind="written"}`]
	}
	if succeeded != 200 || rows != items {
		t.Errorf("workers' metrics: %v batches succeeded, %v rows written; want 200 and %d", succeeded, rows, items)
	}
	if m := c.metrics(sch); m["dripflow_scheduler_leader"] != 1 {
		t.Errorf("scheduler metrics: leader = %v, want 1", m["dripflow_scheduler_leader"])
	}
}

// SIGKILL a worker mid-run, twice: the run still succeeds with every row
// processed exactly once (the data write and the checkpoint share a
// transaction, so a killed attempt leaves nothing behind).
func TestProcessWorkerKilled(t *testing.T) {
	c := newCluster(t)
	const items, size = 40_000, 500
	c.seedItems(items)
	c.scheduler()
	w1 := c.worker(4)
	w2 := c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(8), Params: json.RawMessage(`{"sleep_ms":150}`)})
	// Each kill waits until its worker holds a claimed batch, so it hits
	// something in flight.
	c.waitFor("10 batches, one of them running on the first worker", time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 10 && c.holdsBatch(r.ID, w1)
	})
	w1.kill(t)
	c.worker(4)
	c.waitFor("40 batches, one of them running on the second worker", 2*time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 40 && c.holdsBatch(r.ID, w2)
	})
	w2.kill(t)
	c.worker(4)
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertExactlyOnce(r, items, size)
	// The kills interrupted batches: they were claimed again and counted once.
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		t.Errorf("no batch needed a second attempt: the kills hit nothing in flight")
	}
}

// FLUSHALL of the queue's Redis mid-run: the scheduler's reconciler
// re-enqueues the lost tasks from the SQL store and the run completes.
func TestProcessRedisFlushed(t *testing.T) {
	c := newCluster(t)
	const items, size = 30_000, 500
	c.seedItems(items)
	c.scheduler()
	c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(8), Params: json.RawMessage(`{"sleep_ms":100}`)})
	c.waitFor("10 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 10 })
	// FLUSHDB empties the test's own Redis database: the same loss as
	// FLUSHALL without touching other tests running in parallel.
	if err := c.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertExactlyOnce(r, items, size)
	if !c.logged("scheduler", "re-enqueued a lost batch task") {
		t.Errorf("the scheduler never re-enqueued a lost task: the flush hit nothing queued")
	}
}

// A poison batch fails after max attempts and the run ends failed; once the
// cause is fixed, retrying the failed batches finishes the run.
func TestProcessPoisonBatchRetry(t *testing.T) {
	c := newCluster(t)
	const items, size = 10_000, 500
	c.seedItems(items)
	if err := c.db.Exec("UPDATE e2e_items SET poison = true WHERE id = 5555").Error; err != nil {
		t.Fatal(err)
	}
	c.scheduler()
	c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxAttempts: ptr(2)})
	r = c.waitDone(r.ID, 2*time.Minute)
	if r.State != store.RunFailed || r.BatchesFailed != 1 || r.BatchesSucceeded != items/size-1 {
		t.Fatalf("run %s with %+v; want failed with 1 failed batch", r.State, r.Counters)
	}
	failed, err := c.st.ListBatches(context.Background(), r.ID, store.BatchFilter{States: []store.BatchState{store.BatchFailed}})
	if err != nil || len(failed.Items) != 1 {
		t.Fatalf("failed batches: %v, %v", failed.Items, err)
	}
	b := failed.Items[0]
	// Two attempts (more only if a loaded machine made the reconciler rescue
	// a slow one; each is still rolled back).
	if b.Attempts < 2 || b.Error == "" || !contains(b.Error, "poison row 5555") {
		t.Fatalf("failed batch %s: %d attempts, error %q", b.ID(), b.Attempts, b.Error)
	}
	// The failed attempts left nothing behind.
	var touched int64
	c.db.Table("e2e_items").Where("id > ? AND id <= ? AND counter <> 0", 5500, 6000).Count(&touched)
	if touched != 0 {
		t.Fatalf("%d rows of the failed batch were changed", touched)
	}
	if err := c.db.Exec("UPDATE e2e_items SET poison = false").Error; err != nil {
		t.Fatal(err)
	}
	q, err := tasks.NewClient(c.rdb, tasks.Config{})
	if err != nil {
		t.Fatal(err)
	}
	archived := tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries}
	if st, err := q.BatchTaskState(context.Background(), archived); err != nil || st != tasks.TaskArchived {
		t.Fatalf("task of the failed batch is %s (%v), want archived", st, err)
	}
	n, err := c.ctl.Retry(context.Background(), r.ID, nil)
	if err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	r = c.waitDone(r.ID, time.Minute)
	c.assertExactlyOnce(r, items, size)
	// The queue no longer shows the failure of a batch that has since
	// succeeded (asynqmon's archived list).
	if st, err := q.BatchTaskState(context.Background(), archived); err != nil || st != tasks.TaskMissing {
		t.Errorf("the failed attempt's task is %s (%v) after the retry succeeded, want it gone", st, err)
	}
	if r.Error != "" {
		t.Errorf("succeeded run keeps error %q", r.Error)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || index(s, sub) >= 0) }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// Pause mid-run: no batch starts while paused; resume finishes the run.
// Cancel: batches not started are cancelled and the run ends cancelled.
func TestProcessPauseResumeCancel(t *testing.T) {
	c := newCluster(t)
	const items, size = 20_000, 500
	c.seedItems(items)
	c.scheduler()
	c.worker(2)
	ctx := context.Background()
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), Params: json.RawMessage(`{"sleep_ms":200}`)})
	c.waitFor("5 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 5 })
	if _, err := c.ctl.Pause(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	time.Sleep(2500 * time.Millisecond)
	during := c.run(r.ID)
	if during.State != store.RunPaused || during.BatchesRunning != 0 {
		t.Fatalf("2.5s after pausing: state %s with %d running", during.State, during.BatchesRunning)
	}
	all, err := c.st.ListBatches(ctx, r.ID, store.BatchFilter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range all.Items {
		if b.StartedAt != nil && b.StartedAt.After(pausedAt) {
			t.Errorf("batch %s started at %s, after the pause at %s", b.ID(), b.StartedAt.Format(time.RFC3339Nano), pausedAt.Format(time.RFC3339Nano))
		}
	}
	time.Sleep(time.Second)
	if after := c.run(r.ID); after.BatchesSucceeded != during.BatchesSucceeded {
		t.Fatalf("batches kept succeeding while paused: %d → %d", during.BatchesSucceeded, after.BatchesSucceeded)
	}
	if _, err := c.ctl.Resume(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	r = c.waitDone(r.ID, 2*time.Minute)
	c.assertExactlyOnce(r, items, size)

	// A second run, cancelled mid-way.
	r2 := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), Params: json.RawMessage(`{"sleep_ms":200}`)})
	c.waitFor("3 batches of the second run", time.Minute, func() bool { return c.run(r2.ID).BatchesSucceeded >= 3 })
	if _, err := c.ctl.Cancel(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	r2 = c.waitDone(r2.ID, time.Minute)
	if r2.State != store.RunCancelled || r2.InFlight() != 0 || r2.BatchesCancelled == 0 ||
		r2.BatchesSucceeded+r2.BatchesCancelled != r2.BatchesTotal() {
		t.Fatalf("cancelled run: %s %+v", r2.State, r2.Counters)
	}
	// Exactly the rows of succeeded batches were bumped a second time.
	var twice int64
	c.db.Table("e2e_items").Where("counter = 2").Count(&twice)
	if twice != r2.RowsWritten {
		t.Fatalf("%d rows bumped by the cancelled run, its succeeded batches wrote %d", twice, r2.RowsWritten)
	}
}

// Running a failed batch's archived task again (as asynqmon's "run" does)
// retries that batch, and the run finishes consistently.
func TestProcessReplayArchivedTask(t *testing.T) {
	c := newCluster(t)
	const items, size = 5_000, 500
	c.seedItems(items)
	if err := c.db.Exec("UPDATE e2e_items SET poison = true WHERE id = 1234").Error; err != nil {
		t.Fatal(err)
	}
	c.scheduler()
	c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxAttempts: ptr(1)})
	r = c.waitDone(r.ID, time.Minute)
	if r.State != store.RunFailed || r.BatchesFailed != 1 {
		t.Fatalf("run %s %+v, want failed with one failed batch", r.State, r.Counters)
	}
	if err := c.db.Exec("UPDATE e2e_items SET poison = false").Error; err != nil {
		t.Fatal(err)
	}
	q, err := tasks.NewClient(c.rdb, tasks.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := tasks.BatchPayload{RunID: r.ID, Seq: 3}
	if st, err := q.BatchTaskState(context.Background(), p); err != nil || st != tasks.TaskArchived {
		t.Fatalf("task of the failed batch is %s (%v), want archived", st, err)
	}
	if err := q.RunBatchTask(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	r = c.waitSucceeded(r.ID)
	c.assertExactlyOnce(r, items, size)
}

// waitSucceeded waits for a run (that may be back to running) to succeed.
func (c *cluster) waitSucceeded(id int64) store.Run {
	c.t.Helper()
	c.waitFor("the run to end succeeded", time.Minute, func() bool { return c.run(id).State == store.RunSucceeded })
	return c.run(id)
}
