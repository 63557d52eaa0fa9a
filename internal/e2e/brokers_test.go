package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// A flow from a 10k-entry Redis stream into a PostgreSQL table by upsert,
// through worker processes: a worker SIGKILLed mid-flow and the queue's
// Redis database flushed, yet every entry lands exactly once by key and the
// consumer group has delivered the whole stream.
func TestProcessStreamFlowSurvivesKillAndFlush(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const entries, size = 10_000, 100
	eventsURL := testenv.RedisDB(t) // the stream's own database, not the queue's
	t.Setenv("DRIPFLOW_CONNECTIONS", e2edefs.EventsConnection+"="+eventsURL+","+e2edefs.WarehouseConnection+"="+c.dbURL)
	if err := c.db.Exec(e2edefs.StreamRowsDDL).Error; err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(eventsURL)
	if err != nil {
		t.Fatal(err)
	}
	events := redis.NewClient(opts)
	t.Cleanup(func() { events.Close() })
	pipe := events.Pipeline()
	for i := 1; i <= entries; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: e2edefs.EventStream, Values: []any{"n", i}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	last, err := events.XRevRangeN(ctx, e2edefs.EventStream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatalf("last entry: %v, %v", last, err)
	}

	c.scheduler()
	w1 := c.worker(4)
	c.worker(4)
	c.waitFor("e2e_stream_copy to be registered", 30*time.Second, func() bool {
		_, err := c.st.GetFlow(ctx, "e2e_stream_copy")
		return err == nil
	})
	r := c.createRun(control.NewRun{Definition: "e2e_stream_copy"})
	c.waitFor("10 batches", time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 10 })
	w1.kill(t)
	c.worker(4)
	c.waitFor("40 batches", 2*time.Minute, func() bool { return c.run(r.ID).BatchesSucceeded >= 40 })
	if err := c.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r = c.waitDone(r.ID, 3*time.Minute)

	batches := int64(entries / size)
	if r.State != store.RunSucceeded || r.BatchesSucceeded != batches || r.BatchesTotal() != batches || r.RowsRead != entries {
		t.Errorf("run %d: %s with %+v; want succeeded, %d batches, %d rows read", r.ID, r.State, r.Counters, batches, entries)
	}
	var got struct {
		Rows, Distinct, Lo, Hi int64
	}
	if err := c.db.Raw("SELECT count(*) AS rows, count(DISTINCT n) AS distinct, min(n) AS lo, max(n) AS hi FROM e2e_stream_rows").Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.Rows != entries || got.Distinct != entries || got.Lo != 1 || got.Hi != entries {
		t.Errorf("e2e_stream_rows: %+v; want every n in 1..%d once", got, entries)
	}
	var wrongIDs int64
	if err := c.db.Raw("SELECT count(*) FROM e2e_stream_rows WHERE entry_id !~ '^[0-9]+-[0-9]+$'").Scan(&wrongIDs).Error; err != nil || wrongIDs != 0 {
		t.Errorf("%d rows without a stream entry id (%v)", wrongIDs, err)
	}
	fs, err := c.st.GetFlow(ctx, "e2e_stream_copy")
	if err != nil || fs.Watermark != last[0].ID {
		t.Errorf("watermark %q (%v), want the last entry %s", fs.Watermark, err, last[0].ID)
	}
	// The group delivered the whole stream. Entries stay pending only for a
	// batch whose worker died between its checkpoint and its XACK.
	groups, err := events.XInfoGroups(ctx, e2edefs.EventStream).Result()
	if err != nil || len(groups) != 1 || groups[0].LastDeliveredID != last[0].ID {
		t.Errorf("consumer groups %+v (%v), want e2e delivered up to %s", groups, err, last[0].ID)
	} else if groups[0].Pending > size*4 {
		t.Errorf("%d entries still pending, want at most the batches the kill interrupted", groups[0].Pending)
	} else {
		t.Logf("%d entries left pending by the kill", groups[0].Pending)
	}
	t.Logf("%d batches needed a second attempt", c.batchesWithAttempts(r.ID, 2))
}
