package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
)

// A worker killed with SIGKILL mid-batch, under a one-minute claim lease:
// its heartbeat stops, the scheduler ends its claims within seconds, and
// its batches run again on another worker long before the lease would
// have let them; every row is still processed exactly once.
func TestProcessKilledWorkerRescuedByHeartbeat(t *testing.T) {
	c := newCluster(t)
	const items, size = 2000, 500
	c.seedItems(items)
	c.scheduler()
	w1 := c.start("worker", "--concurrency=4", "--claim-lease=1m")
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), MaxAttempts: ptr(3), Params: json.RawMessage(`{"sleep_ms":2000}`)})
	c.waitFor("batches in flight", time.Minute, func() bool { return c.run(r.ID).BatchesRunning >= 2 })
	w1.kill(t)
	killed := time.Now()
	c.start("worker", "--concurrency=4", "--claim-lease=1m")
	r = c.waitDone(r.ID, 2*time.Minute)
	took := time.Since(killed)
	c.assertExactlyOnce(r, items, size)
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		t.Errorf("no batch needed a second attempt: the kill hit nothing in flight")
	}
	// Heartbeat TTL 6s, checked every second, then a 2s batch: well under
	// the one-minute lease.
	if took > 20*time.Second {
		t.Errorf("run finished %s after the kill, want within 20s (the claim lease is 1m)", took.Round(time.Millisecond))
	}
}
