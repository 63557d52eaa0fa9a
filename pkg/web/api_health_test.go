package web_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/store"
)

// Health checks over the API: the built-in kinds are taken and shown on
// the run; a sql check (arbitrary SQL), an unknown kind and bad settings
// are 422 naming the field, and create nothing.
func TestAPIHealthChecks(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ body, field, msg string }{
		{`{"kind":"sql","query":"SELECT true"}`, "health_checks[0].kind", "only be declared in a Go definition"},
		{`{"kind":"sql","query":"DELETE FROM users RETURNING false"}`, "health_checks[0].kind", "sql checks"},
		{`{"kind":"disk_full"}`, "health_checks[0].kind", "must be one of replication_lag, autovacuum, lock_waits, sql"},
		{`{"kind":"replication_lag"}`, "health_checks[0].max_seconds", "more than 0"},
		{`{"kind":"replication_lag","max_seconds":-2}`, "health_checks[0].max_seconds", "more than 0"},
		{`{"kind":"lock_waits","max":-1}`, "health_checks[0].max", "between 0"},
		{`{"kind":"lock_waits","query":"SELECT 1"}`, "health_checks[0].query", "not a setting of a lock_waits check"},
		{`{"kind":"autovacuum","table":"users; DROP TABLE users"}`, "health_checks[0].table", "table or schema.table"},
		{`{"kind":"autovacuum"}`, "health_checks[0].table", "must name a table"},
	} {
		code, ae, _ := e.raw("POST", "/api/v1/runs", aliceToken,
			`{"definition":"add_default_role_to_users","health_checks":[`+tc.body+`]}`)
		if code != http.StatusUnprocessableEntity || ae.Field != tc.field || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: %d %+v; want 422 on %s saying %q", tc.body, code, ae, tc.field, tc.msg)
		}
	}
	// A sql check second in the list is refused all the same.
	code, ae, _ := e.raw("POST", "/api/v1/runs", aliceToken,
		`{"definition":"add_default_role_to_users","health_checks":[{"kind":"lock_waits"},{"kind":"sql","query":"SELECT true"}]}`)
	if code != http.StatusUnprocessableEntity || ae.Field != "health_checks[1].kind" {
		t.Errorf("second check sql: %d %+v; want 422 on health_checks[1].kind", code, ae)
	}
	if page, err := e.st.ListRuns(ctx, store.RunFilter{}); err != nil || len(page.Items) != 0 {
		t.Fatalf("refused requests created %d runs (%v), want none", len(page.Items), err)
	}

	checks := []api.HealthCheck{
		{Kind: "replication_lag", MaxSeconds: 5},
		{Kind: "autovacuum", Table: "public.users"},
		{Kind: "lock_waits", Max: 2, Name: "waiters"},
	}
	r, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "add_default_role_to_users", HealthChecks: checks})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.alice.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Options.HealthChecks) != 3 || got.Options.HealthChecks[0] != checks[0] || got.Options.HealthChecks[2] != checks[2] {
		t.Fatalf("run's checks %+v, want %+v", got.Options.HealthChecks, checks)
	}
	if got.Held != nil {
		t.Fatalf("a new run reads held: %+v", got.Held)
	}

	// A hold the scheduler records reaches the API (a separate process
	// reads it from the store) while the run is running, not once paused.
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	if _, err := e.st.TransitionRun(ctx, id, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	if err := e.st.SetRunHold(ctx, id, &store.RunHold{Reason: "replication lag 12.3 s > 5 s", Check: "replication_lag", Since: since}); err != nil {
		t.Fatal(err)
	}
	got, err = e.alice.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Held == nil || got.Held.Reason != "replication lag 12.3 s > 5 s" || got.Held.Check != "replication_lag" || !got.Held.Since.Equal(since) {
		t.Fatalf("held %+v, want the scheduler's hold", got.Held)
	}
	page, err := e.alice.ListRuns(ctx, client.ListRunsOptions{})
	if err != nil || len(page.Items) != 1 || page.Items[0].Held == nil {
		t.Fatalf("runs list: %+v, %v; want the run held", page.Items, err)
	}
	if _, err := e.st.TransitionRun(ctx, id, store.RunPaused, nil); err != nil {
		t.Fatal(err)
	}
	if got, err = e.alice.Run(ctx, r.ID); err != nil || got.Held != nil {
		t.Fatalf("paused run: held %+v, %v; want none", got.Held, err)
	}
}

// A flow spec sent to the API may carry built-in health checks, never a
// sql one: 422 naming the field, and no flow is stored.
func TestAPIFlowSpecHealthChecks(t *testing.T) {
	e := newAPIEnvOn(t, true, nil)
	ctx := context.Background()
	withChecks := func(name, checks string) string {
		return strings.Replace(usersSpec(name, "once"), `"options": {"batch_size": 500}`, `"options": {"batch_size": 500, "health_checks": `+checks+`}`, 1)
	}
	for _, tc := range []struct{ checks, field string }{
		{`[{"kind": "sql"}]`, "options.health_checks[0].kind"},
		{`[{"kind": "sql", "query": "SELECT true"}]`, "options.health_checks[0].query"},
		{`[{"kind": "lock_waits", "max": -3}]`, "options.health_checks[0].max"},
	} {
		code, ae, _ := e.raw("POST", "/api/v1/flows", aliceToken, withChecks("checked_flow", tc.checks))
		if code != http.StatusUnprocessableEntity || ae.Field != tc.field {
			t.Errorf("spec with %s: %d %+v; want 422 on %s", tc.checks, code, ae, tc.field)
		}
	}
	if _, err := e.alice.Flow(ctx, "checked_flow"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("a refused spec was stored: %v", err)
	}
	code, body, _ := e.send("POST", "/api/v1/flows", aliceToken, "application/json",
		withChecks("checked_flow", `[{"kind": "replication_lag", "max_seconds": 3}]`), nil)
	if code != http.StatusCreated || !strings.Contains(string(body), `"health_checks"`) {
		t.Fatalf("spec with a replication_lag check: %d %s", code, body)
	}
}
