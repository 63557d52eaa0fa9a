package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	_ "github.com/dripflow/dripflow/pkg/connectors/file"
	_ "github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// A heartbeat flow whose run is still live when its ticks come due: each
// tick is recorded as missed once (not once per scheduler pass), and no
// second run starts beside the live one.
// On both stores.
func TestHeartbeatTicksMissedWhileARunIsLive(t *testing.T) {
	t.Run("sql", func(t *testing.T) {
		ctx := context.Background()
		url := testenv.SQLiteURL(t)
		if err := sqlstore.MigrateURL(ctx, url); err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rdb, prefix := testenv.Redis(t)
		testTicksMissed(t, st, rdb, prefix)
	})
	t.Run("redis", func(t *testing.T) {
		st, rdb, prefix := newRedisStore(t)
		testTicksMissed(t, st, rdb, prefix)
	})
}

func testTicksMissed(t *testing.T, st store.Store, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	s, err := flows.ParseSpec([]byte(fmt.Sprintf(`{"name": "beat",
		"source": {"kind": "sql", "settings": {"table": "things"}},
		"sink": {"kind": "file", "settings": {"dir": %q, "format": "jsonl"}},
		"runtime": "every 1s"}`, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := flows.Apply(ctx, st, s, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetFlowActive(ctx, "beat", true); err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	reg.SetLoader(flows.SpecLoader(st))
	// A live run that will not start for an hour: every tick meanwhile
	// is missed.
	ctl := &control.Controller{Store: st, Registry: reg, Events: events.New(rdb, prefix+"events")}
	live, err := ctl.CreateRun(ctx, control.NewRun{Definition: "beat", CreatedBy: "test", StartAt: ptr(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if live.SpecVersion != 1 {
		t.Errorf("run of the spec flow has spec version %d, want 1", live.SpecVersion)
	}
	startScheduler(t, st, rdb, prefix, scheduler.Config{Registry: reg})
	time.Sleep(3500 * time.Millisecond)
	fs, err := st.GetFlow(ctx, "beat")
	if err != nil {
		t.Fatal(err)
	}
	// Ticks at +1s, +2s, +3s after the run's creation; passes every 100ms
	// would have counted about 30.
	if fs.MissedTicks < 2 || fs.MissedTicks > 4 || fs.LastMissedTick == nil {
		t.Errorf("missed ticks %d (last %v) in 3.5s of a 1s heartbeat, want 3", fs.MissedTicks, fs.LastMissedTick)
	}
	page, err := st.ListRuns(ctx, store.RunFilter{Definition: "beat", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Errorf("%d runs of the flow, want only the live one", len(page.Items))
	}
}

func ptr[T any](v T) *T { return &v }
