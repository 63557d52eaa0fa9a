package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// Faults in the suite: a backfill that is not idempotent (counter =
// counter + 1) runs while something breaks, in both of its forms — records
// loaded (ProcessBatch, e2e_bump) and one UPDATE over the key range
// (ProcessRange, e2e_bump_range). Whatever breaks, every row ends at
// exactly 1 and the run's counters equal the row count: a batch's write
// and its checkpoint commit together or not at all, a batch whose attempt
// was cut off runs again, and an attempt that lost its claim cannot
// commit.

// bumpForms are the two forms of the non-idempotent backfill.
var bumpForms = []struct{ name, definition string }{
	{"ProcessBatch", "e2e_bump"},
	{"ProcessRange", "e2e_bump_range"},
}

// The fault runs' shape: 40 batches of 100 rows, each batch sleeping
// 300ms, 6 worker slots and up to 8 batches in flight (so a couple wait in
// the queue), some 2 seconds of work without faults.
const (
	faultItems     = 4000
	faultBatchSize = 100
)

// fastHeartbeat lets the scheduler find a dead or frozen worker within
// about 4 seconds (the claim lease, the backstop, is 5s in these tests).
var fastHeartbeat = []string{"DRIPFLOW_WORKER_HEARTBEAT_INTERVAL=500ms", "DRIPFLOW_WORKER_HEARTBEAT_TTL=3s"}

// eachForm runs fn for both forms, side by side.
func eachForm(t *testing.T, fn func(t *testing.T, definition string)) {
	for _, f := range bumpForms {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fn(t, f.definition)
		})
	}
}

// startFaultRun seeds the items and starts the backfill; it returns once
// a few batches have succeeded, so the fault hits a run in full flow.
func startFaultRun(c *cluster, definition string) store.Run {
	c.t.Helper()
	start := time.Now()
	c.seedItems(faultItems)
	r := c.createRun(control.NewRun{Definition: definition, BatchSize: ptr(faultBatchSize), MaxInFlight: ptr(8), MaxAttempts: ptr(50),
		Params: json.RawMessage(`{"sleep_ms":300}`)})
	c.waitFor("first batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 3 })
	c.t.Logf("first batches after %s", time.Since(start).Round(time.Millisecond))
	c.t.Cleanup(func() { c.t.Logf("run %d: %s after its start", r.ID, time.Since(start).Round(time.Millisecond)) })
	return r
}

// notOverYet fails the test when the run ended before the fault.
func notOverYet(c *cluster, r store.Run) {
	c.t.Helper()
	if got := c.run(r.ID); got.State.Terminal() || got.BatchesSucceeded >= int64(faultItems/faultBatchSize) {
		c.t.Fatalf("the run was over (%s, %+v) before the fault: it hits nothing", got.State, got.Counters)
	}
}

// Workers SIGKILLed again and again, each while it holds a batch.
func TestProcessFaultWorkersKilled(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		c := newCluster(t)
		c.env = fastHeartbeat
		c.scheduler()
		workers := []*proc{c.worker(2), c.worker(2), c.worker(2)}
		r := startFaultRun(c, definition)
		kills := 0
		for round := 0; round < 4 && !c.run(r.ID).State.Terminal(); round++ {
			i := round % len(workers)
			deadline := time.Now().Add(5 * time.Second)
			for !c.holdsBatch(r.ID, workers[i]) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			workers[i].kill(t)
			kills++
			workers[i] = c.worker(2)
			time.Sleep(700 * time.Millisecond)
		}
		r = c.waitDone(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
		again := c.batchesWithAttempts(r.ID, 2)
		t.Logf("%d workers killed; %d batches needed more than one attempt", kills, again)
		if again == 0 {
			t.Errorf("no batch needed a second attempt: the kills hit nothing in flight")
		}
	})
}

// Every connection to the database cut mid-batch (pg_terminate_backend),
// several times.
func TestProcessFaultConnectionsDropped(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		c := newCluster(t)
		c.env = fastHeartbeat
		c.scheduler()
		c.worker(3)
		c.worker(3)
		r := startFaultRun(c, definition)
		terminated := 0
		for round := 0; round < 5 && !c.run(r.ID).State.Terminal(); round++ {
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
			time.Sleep(600 * time.Millisecond)
		}
		r = c.waitDone(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
		t.Logf("%d backends terminated; %d batches needed more than one attempt", terminated, c.batchesWithAttempts(r.ID, 2))
		if terminated == 0 {
			t.Errorf("no backend was terminated mid-batch: the faults hit nothing")
		}
	})
}

// PostgreSQL (a server of the test's own) crashes mid-run — every
// connection cut, no checkpoint, crash recovery — and is back a second
// later.
func TestProcessFaultPostgresRestarted(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		pg := privatePostgres(t)
		c := newClusterAt(t, pg.URL(), testenv.RedisDB(t))
		c.env = fastHeartbeat
		c.scheduler()
		c.worker(3)
		c.worker(3)
		r := startFaultRun(c, definition)
		notOverYet(c, r)
		pg.crashRestart(time.Second)
		restarted := time.Now()
		r = c.waitDoneThroughFaults(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
		t.Logf("run ended %s after PostgreSQL was back; %d batches needed more than one attempt",
			time.Since(restarted).Round(time.Millisecond), c.batchesWithAttempts(r.ID, 2))
	})
}

// Redis (a server of the test's own, without persistence) is killed
// mid-run and an empty one started in its place: the queue, the leader
// lease, the workers' heartbeats are gone. The scheduler enqueues the lost
// tasks again from the store.
func TestProcessFaultRedisRestartedEmpty(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		rs := privateRedis(t)
		c := newClusterAt(t, testenv.PostgresURL(t), rs.URL())
		c.env = fastHeartbeat
		c.scheduler()
		workers := []*proc{c.worker(2), c.worker(2)}
		r := startFaultRun(c, definition)
		notOverYet(c, r)
		// The workers paused for a moment, so that tasks wait in the queue
		// when Redis loses them: 8 batches in flight, 4 slots and a task
		// held ready per worker (tasks.ServerConfig.Prefetch).
		for _, w := range workers {
			w.cmd.Process.Signal(syscall.SIGSTOP)
		}
		t.Cleanup(func() {
			for _, w := range workers {
				w.cmd.Process.Signal(syscall.SIGCONT)
			}
		})
		time.Sleep(400 * time.Millisecond)
		rs.restartEmpty(300 * time.Millisecond)
		for _, w := range workers {
			w.cmd.Process.Signal(syscall.SIGCONT)
		}
		r = c.waitDone(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
		if !c.logged("scheduler", "re-enqueued a lost batch task") {
			t.Errorf("the scheduler re-enqueued no lost task: Redis lost nothing?")
		}
	})
}

// Two schedulers; the leading one is SIGKILLed mid-run and the other takes
// over within the leader lease.
func TestProcessFaultLeaderKilled(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		c := newCluster(t)
		c.env = fastHeartbeat
		s1 := c.scheduler()
		c.leader(s1)
		s2 := c.scheduler()
		c.worker(3)
		c.worker(3)
		r := startFaultRun(c, definition)
		notOverYet(c, r)
		lead := c.leader(s1, s2)
		other := s1
		if lead == s1 {
			other = s2
		}
		lead.kill(t)
		killed := time.Now()
		c.leader(other)
		took := time.Since(killed)
		r = c.waitDone(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
		t.Logf("%s took the lead %s after %s was killed", other.name, took.Round(time.Millisecond), lead.name)
		// The lease is 3s here, renewed every fifth of it.
		if took > 15*time.Second {
			t.Errorf("the other scheduler took the lead %s after the kill, want within a few seconds of the 3s lease", took)
		}
	})
}

// A worker frozen (SIGSTOP) mid-batch until its heartbeat has stopped and
// its claim lease passed, then resumed: another worker has done its batch
// meanwhile, and the frozen one's late commit is refused.
//
// The freeze lands in the batch's work (the backfill's sleep, its
// transaction open), not inside its commit: a worker frozen while its
// commit holds the batch's and the run's row locks keeps them until it
// wakes up, and nothing else can end that batch meanwhile (see the
// operations guide's runbook).
func TestProcessFaultWorkerFrozenPastLease(t *testing.T) {
	eachForm(t, func(t *testing.T, definition string) {
		c := newCluster(t)
		c.env = fastHeartbeat
		c.scheduler()
		frozen := c.worker(1)
		c.worker(3)
		r := startFaultRun(c, definition)
		// One batch at a time: freeze it within 150ms of its claim, well
		// inside its 300ms of work.
		suffix := ":" + strconv.Itoa(frozen.cmd.Process.Pid)
		c.waitFor("the worker to start a batch", 30*time.Second, func() bool {
			for _, b := range c.batchesOf(r.ID) {
				if b.State == store.BatchRunning && strings.HasSuffix(b.Worker, suffix) && b.StartedAt != nil && time.Since(*b.StartedAt) < 150*time.Millisecond {
					frozen.cmd.Process.Signal(syscall.SIGSTOP)
					return true
				}
			}
			return false
		})
		t.Cleanup(func() { frozen.cmd.Process.Signal(syscall.SIGCONT) })
		stopped := time.Now()
		held := c.heldBy(r.ID, frozen)
		if len(held) != 1 {
			t.Fatalf("the frozen worker holds batches %v, want one", held)
		}
		seq := held[0]
		// Past the 5s claim lease, and until another worker has done the
		// batch.
		c.waitFor("the frozen worker's batch to be done by another", time.Minute, func() bool {
			b := c.batchesOf(r.ID)[seq]
			return time.Since(stopped) > 6*time.Second && b.State == store.BatchSucceeded
		})
		b := c.batchesOf(r.ID)[seq]
		if b.Attempts < 2 || strings.HasSuffix(b.Worker, suffix) {
			t.Errorf("batch %d: %d attempts, last by %s; want it done by another worker than the frozen %s", seq, b.Attempts, b.Worker, suffix)
		}
		frozen.cmd.Process.Signal(syscall.SIGCONT)
		// Its late commit is refused: it says so, and the rows stay at 1.
		c.waitFor("the woken worker to give its batch up", 30*time.Second, func() bool {
			b, _ := os.ReadFile(frozen.log)
			return strings.Contains(string(b), "batch taken over by another attempt")
		})
		r = c.waitDone(r.ID, 2*time.Minute)
		c.assertExactlyOnce(r, faultItems, faultBatchSize)
	})
}
