package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
)

// Faults in the suite: a backfill that is not idempotent (counter =
// counter + 1) runs while workers are SIGKILLed again and again and
// PostgreSQL backends are terminated mid-batch (pg_terminate_backend).
// Every row still ends at exactly 1, and the run's counters equal the row
// count: a batch's write and its checkpoint commit together or not at all,
// and a batch whose attempt was cut off runs again.
func TestProcessFaultsNonIdempotentBackfill(t *testing.T) {
	c := newCluster(t)
	const items, size = 20_000, 200
	c.seedItems(items)
	c.scheduler()
	workers := []*proc{c.worker(4), c.worker(4), c.worker(4)}
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(8), MaxAttempts: ptr(50),
		Params: json.RawMessage(`{"sleep_ms":100}`)})
	c.waitFor("first batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 3 })

	var kills, terminated int
	for round := 0; round < 8; round++ {
		if c.run(r.ID).State.Terminal() {
			break
		}
		if round%2 == 0 {
			i := round / 2 % len(workers)
			workers[i].kill(t)
			kills++
			workers[i] = c.worker(4)
		} else {
			// Backends of the workers and the scheduler in the middle of a
			// statement or a transaction; this test's own connections are
			// idle while it runs.
			var n int64
			if err := c.db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()
				AND state IN ('active', 'idle in transaction')`).Scan(&n).Error; err != nil {
				t.Fatalf("terminate backends: %v", err)
			}
			terminated += int(n)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	faultsEnd := time.Now()
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertExactlyOnce(r, items, size)
	t.Logf("%d workers killed, %d backends terminated; %d batches needed more than one attempt; run ended %s after the last fault",
		kills, terminated, c.batchesWithAttempts(r.ID, 2), time.Since(faultsEnd).Round(time.Millisecond))
	if terminated == 0 {
		t.Errorf("no backend was terminated mid-batch: the faults hit nothing")
	}
}
