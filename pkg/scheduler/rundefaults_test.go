package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
)

// The runs a scheduler starts for flows (here a heartbeat) get the
// process's DRIPFLOW_DEFAULT_* options where the flow declares none, and
// the flow's own where it does.
func TestFlowRunsGetRunDefaults(t *testing.T) {
	ctx := context.Background()
	st, rdb, prefix := newRedisStore(t)
	s, err := flows.ParseSpec([]byte(fmt.Sprintf(`{"name": "beat",
		"source": {"kind": "sql", "settings": {"table": "things"}},
		"sink": {"kind": "file", "settings": {"dir": %q, "format": "jsonl"}},
		"runtime": "every 1s", "options": {"max_in_flight": 3}}`, t.TempDir())))
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
	startScheduler(t, st, rdb, prefix, scheduler.Config{Registry: reg,
		RunDefaults: control.Defaults{Sleep: 100 * time.Millisecond, MaxInFlight: 2, RowsPerSecond: 300}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := st.ListRuns(ctx, store.RunFilter{Definition: "beat", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 0 {
			o := page.Items[0].Options
			if o.Sleep != 100*time.Millisecond || o.RowsPerSecond != 300 || o.MaxInFlight != 3 {
				t.Errorf("the heartbeat's run has sleep %v, %d rows/s, %d in flight; want the process's 100ms and 300, the flow's 3", o.Sleep, o.RowsPerSecond, o.MaxInFlight)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no run of the heartbeat flow within 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A scheduler refuses defaults outside the store's limits.
func TestSchedulerRefusesBadRunDefaults(t *testing.T) {
	st, rdb, _ := newRedisStore(t)
	_, err := scheduler.New(scheduler.Config{Store: st, Redis: rdb, RunDefaults: control.Defaults{MaxInFlight: 20000}})
	if err == nil || !strings.Contains(err.Error(), "DRIPFLOW_DEFAULT_MAX_IN_FLIGHT") {
		t.Errorf("New with 20000 in flight by default: %v, want an error naming DRIPFLOW_DEFAULT_MAX_IN_FLIGHT", err)
	}
}
