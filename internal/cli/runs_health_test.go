package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// runs show prints why the scheduler holds a run and its health checks;
// runs list marks it held.
func TestRunsShowHeld(t *testing.T) {
	url, st := server(t)
	ctx := context.Background()
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "add_default_role_to_users", Kind: store.KindBackfill, CreatedBy: "erin",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1,
			HealthChecks: []store.HealthCheck{{Kind: store.HealthReplicationLag, MaxSeconds: 5}, {Kind: store.HealthLockWaits, Max: 2, Connection: "replica"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRunHold(ctx, r.ID, &store.RunHold{Reason: "replication lag 12.3 s > 5 s", Check: "replication_lag", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(r.ID, 10)
	code, out, errs := run(t, url, "show", id)
	if code != ExitOK || !strings.Contains(out, "held") || !strings.Contains(out, "replication lag 12.3 s > 5 s since ") ||
		!strings.Contains(out, "replication lag > 5 s") || !strings.Contains(out, "lock waits > 2 on replica") {
		t.Fatalf("show: %d %q %s", code, out, errs)
	}
	code, out, _ = run(t, url, "list")
	if code != ExitOK || !strings.Contains(out, "running (held)") {
		t.Fatalf("list: %d %q", code, out)
	}
	if err := st.SetRunHold(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = run(t, url, "show", id); code != ExitOK || strings.Contains(out, "held") {
		t.Fatalf("show after the hold: %d %q", code, out)
	}
}
