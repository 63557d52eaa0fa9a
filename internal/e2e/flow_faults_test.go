package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// assertLedger checks the ledger holds exactly one row per item 1..items,
// with the item's value.
func (c *cluster) assertLedger(r store.Run, items int) {
	c.t.Helper()
	var rows, distinct, wrong int64
	c.db.Raw("SELECT COUNT(*), COUNT(DISTINCT item_id) FROM e2e_ledger").Row().Scan(&rows, &distinct)
	c.db.Raw("SELECT COUNT(*) FROM e2e_ledger WHERE val <> 'v' || item_id OR item_id < 1 OR item_id > ?", items).Scan(&wrong)
	if rows != int64(items) || distinct != int64(items) || wrong != 0 {
		c.t.Errorf("ledger: %d rows for %d distinct items (%d wrong), want exactly one per item of %d", rows, distinct, wrong, items)
	}
	if r.State != store.RunSucceeded || r.RowsRead != int64(items) || r.RowsWritten != int64(items) {
		c.t.Errorf("run %d: %s, counters %+v; want succeeded with %d rows", r.ID, r.State, r.Counters, items)
	}
}

// TestProcessFlowFaults: a flow whose sink appends without a key (not
// idempotent) to the store's database, with a worker SIGKILLed mid-flow and
// the queue's Redis flushed: every record lands exactly once, because the
// write commits with the batch's checkpoint.
func TestProcessFlowFaults(t *testing.T) {
	c := newCluster(t)
	const items = 30_000
	c.seedItems(items)
	c.scheduler()
	w1 := c.worker(4)
	c.worker(4)
	r := c.createRun(control.NewRun{Definition: "e2e_ledger"})
	c.waitFor("10 batches, one running on the first worker", time.Minute, func() bool {
		return c.run(r.ID).BatchesSucceeded >= 10 && c.holdsBatch(r.ID, w1)
	})
	w1.kill(t)
	c.worker(4)
	c.waitFor("25 batches", 2*time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 25 })
	if err := c.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertLedger(r, items)
	if n := c.batchesWithAttempts(r.ID, 2); n == 0 {
		t.Errorf("no batch needed a second attempt: the kill hit nothing in flight")
	}
}

// TestProcessFlowAcrossDatabases: a flow reads a MariaDB "replica" through a
// named connection (DRIPFLOW_CONNECTIONS) and writes the PostgreSQL
// application database, with a worker killed mid-flow: exactly once.
func TestProcessFlowAcrossDatabases(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	replicaURL := testenv.MySQLURL(t)
	replica, err := sqlstore.OpenDB(ctx, replicaURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := replica.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := replica.AutoMigrate(&e2edefs.Item{}); err != nil {
		t.Fatal(err)
	}
	const items = 20_000
	rows := make([]e2edefs.Item, items)
	for i := range rows {
		rows[i] = e2edefs.Item{ID: int64(i + 1), Val: fmt.Sprintf("v%d", i+1), UpdatedAt: time.Now()}
	}
	if err := replica.CreateInBatches(rows, 2000).Error; err != nil {
		t.Fatalf("seed the replica: %v", err)
	}
	c.env = append(c.env, "DRIPFLOW_CONNECTIONS=replica="+replicaURL)
	c.scheduler()
	w1 := c.worker(4)
	r := c.createRun(control.NewRun{Definition: "e2e_mirror"})
	c.waitFor("8 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 8 })
	w1.kill(t)
	c.worker(4)
	r = c.waitDone(r.ID, 3*time.Minute)
	c.assertLedger(r, items)
}

// TestProcessFlowUnknownConnection: a flow naming a connection the processes
// were not given fails its run with a message saying what to set, rather
// than staying running with nothing planned.
func TestProcessFlowUnknownConnection(t *testing.T) {
	c := newCluster(t)
	c.scheduler()
	c.worker(2)
	r := c.createRun(control.NewRun{Definition: "e2e_mirror"})
	r = c.waitDone(r.ID, 30*time.Second)
	if r.State != store.RunFailed || !strings.Contains(r.Error, `unknown connection "replica"`) || !strings.Contains(r.Error, "DRIPFLOW_CONNECTIONS=replica=") {
		t.Errorf("run %d: %s, error %q; want failed naming the connection to set", r.ID, r.State, r.Error)
	}
}
