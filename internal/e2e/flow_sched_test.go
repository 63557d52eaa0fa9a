package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// copiesMatch reports whether e2e_copies equals e2e_items (ids and values).
func (c *cluster) copiesMatch() (bool, string) {
	var diff []struct {
		ID  int64
		Val string
	}
	err := c.db.Raw(`SELECT i.id, i.val FROM e2e_items i LEFT JOIN e2e_copies c ON c.item_id = i.id
		WHERE c.item_id IS NULL OR c.val <> i.val LIMIT 5`).Scan(&diff).Error
	if err != nil {
		return false, err.Error()
	}
	var items, copies int64
	c.db.Table("e2e_items").Count(&items)
	c.db.Table("e2e_copies").Count(&copies)
	if len(diff) > 0 || items != copies {
		return false, fmt.Sprintf("%d items, %d copies, first differences %v", items, copies, diff)
	}
	return true, ""
}

// A heartbeat flow: rows inserted and updated between beats reach the sink,
// nothing is duplicated or missed, and the watermark moves.
func TestProcessHeartbeatFlow(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.seedItems(3000)
	c.scheduler()
	c.worker(4)
	c.waitFor("e2e_sync to be registered", 30*time.Second, func() bool {
		_, err := c.st.GetFlow(ctx, "e2e_sync")
		return err == nil
	})
	if _, err := c.st.SetFlowActive(ctx, "e2e_sync", true); err != nil {
		t.Fatal(err)
	}
	var why string
	c.waitFor("the first beat to copy every item", time.Minute, func() bool {
		var ok bool
		ok, why = c.copiesMatch()
		return ok
	})
	// The rows land before the run ends; the watermark moves when it does.
	var first string
	c.waitFor("the first beat's run to move the watermark", 30*time.Second, func() bool {
		fs, err := c.st.GetFlow(ctx, "e2e_sync")
		first = fs.Watermark
		return err == nil && first != ""
	})
	for round := 1; round <= 3; round++ {
		// Update some rows and insert new ones between beats.
		if err := c.db.Exec(`UPDATE e2e_items SET val = ?, updated_at = now() WHERE id % 97 = ?`, fmt.Sprintf("changed-%d", round), round).Error; err != nil {
			t.Fatal(err)
		}
		if err := c.db.Exec(`INSERT INTO e2e_items (id, counter, poison, val, updated_at)
			SELECT g, 0, false, 'new-' || g, now() FROM generate_series(CAST(? AS bigint), CAST(? AS bigint)) AS g`, 100000*round, 100000*round+499).Error; err != nil {
			t.Fatal(err)
		}
		c.waitFor(fmt.Sprintf("round %d to converge (%s)", round, why), time.Minute, func() bool {
			var ok bool
			ok, why = c.copiesMatch()
			return ok
		})
	}
	fs, _ := c.st.GetFlow(ctx, "e2e_sync")
	if fs.Watermark == first {
		t.Errorf("watermark stayed at %s", first)
	}
	// Runs moved only what changed: later runs read far fewer rows than the table holds.
	page, err := c.st.ListRuns(ctx, store.RunFilter{Definition: "e2e_sync", States: []store.RunState{store.RunSucceeded}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) < 2 {
		t.Fatalf("%d succeeded runs of e2e_sync", len(page.Items))
	}
	for _, r := range page.Items[:len(page.Items)-1] { // all but the first (oldest) run
		if r.RowsRead > 600 {
			t.Errorf("run %d read %d rows; an incremental beat should move only changed rows", r.ID, r.RowsRead)
		}
		if r.CreatedBy != "scheduler" {
			t.Errorf("run %d created by %q, want scheduler", r.ID, r.CreatedBy)
		}
	}

	// Nothing changes for four beats: no empty runs fill the runs list.
	runs := func() []store.Run {
		page, err := c.st.ListRuns(ctx, store.RunFilter{Definition: "e2e_sync", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	c.waitFor("the last beat's run to end", 30*time.Second, func() bool { return runs()[0].State.Terminal() })
	before := len(runs())
	time.Sleep(4 * time.Second)
	if after := runs(); len(after) != before {
		t.Errorf("%d runs of e2e_sync started in 4 quiet seconds (heartbeat 1s), the newest read %d rows; want none while nothing changes", len(after)-before, after[0].RowsRead)
	}
	// A change wakes it again.
	if err := c.db.Exec(`INSERT INTO e2e_items (id, counter, poison, val, updated_at) VALUES (999999, 0, false, 'late', now())`).Error; err != nil {
		t.Fatal(err)
	}
	c.waitFor("the late row to be copied", 30*time.Second, func() bool {
		ok, _ := c.copiesMatch()
		return ok
	})
}

// leaderPID returns the pid of the scheduler holding the lease.
func (c *cluster) leaderPID() int {
	v, err := c.rdb.Get(context.Background(), "dripflow:scheduler:leader").Result()
	if err != nil {
		return 0
	}
	// token = host:pid:nonce
	parts := strings.Split(v, ":")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// Two schedulers at once: no batch is processed twice; killing the leader
// hands over within seconds and the run finishes.
func TestProcessTwoSchedulers(t *testing.T) {
	c := newCluster(t)
	const items, size = 30_000, 500
	c.seedItems(items)
	s1 := c.scheduler()
	s2 := c.scheduler()
	c.worker(4)
	c.worker(4)
	var leader int
	c.waitFor("a leader", 20*time.Second, func() bool { leader = c.leaderPID(); return leader != 0 })
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(6), Params: json.RawMessage(`{"sleep_ms":100}`)})
	c.waitFor("10 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 10 })
	var dead, alive *proc
	switch leader {
	case s1.cmd.Process.Pid:
		dead, alive = s1, s2
	case s2.cmd.Process.Pid:
		dead, alive = s2, s1
	default:
		t.Fatalf("leader pid %d is neither scheduler (%d, %d)", leader, s1.cmd.Process.Pid, s2.cmd.Process.Pid)
	}
	killed := time.Now()
	dead.kill(t)
	c.waitFor("the other scheduler to lead", 15*time.Second, func() bool { return c.leaderPID() == alive.cmd.Process.Pid })
	t.Logf("leadership handed over %s after the kill", time.Since(killed).Round(time.Millisecond))
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertExactlyOnce(r, items, size)
}

// A Once flow runs once per activation: a run triggered by hand before the
// flow is activated does not stop the activation's run, and the flow does
// not run again until it is activated again.
func TestProcessOnceFlowRunsOncePerActivation(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	c.seedItems(500)
	c.scheduler()
	c.worker(2)
	c.waitFor("e2e_ledger to be registered", 30*time.Second, func() bool {
		_, err := c.st.GetFlow(ctx, "e2e_ledger")
		return err == nil
	})
	runs := func() []store.Run {
		page, err := c.st.ListRuns(ctx, store.RunFilter{Definition: "e2e_ledger", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	byHand := c.createRun(control.NewRun{Definition: "e2e_ledger"})
	c.waitDone(byHand.ID, time.Minute)
	if _, err := c.st.SetFlowActive(ctx, "e2e_ledger", true); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the activation's run", 30*time.Second, func() bool { return len(runs()) == 2 })
	c.waitFor("it to end", time.Minute, func() bool { return runs()[0].State.Terminal() })
	time.Sleep(3 * time.Second)
	if n := len(runs()); n != 2 {
		t.Fatalf("%d runs after one activation and one run by hand, want 2", n)
	}
	// Deactivated and activated again: one more run.
	if _, err := c.st.SetFlowActive(ctx, "e2e_ledger", false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := c.st.SetFlowActive(ctx, "e2e_ledger", true); err != nil {
		t.Fatal(err)
	}
	c.waitFor("the second activation's run", 30*time.Second, func() bool { return len(runs()) == 3 })
	c.waitFor("it to end", time.Minute, func() bool { return runs()[0].State.Terminal() })
	time.Sleep(3 * time.Second)
	if n := len(runs()); n != 3 {
		t.Fatalf("%d runs after two activations and one run by hand, want 3", n)
	}
}
