package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/web"
)

// dryRunDefs are definitions of the dry-run tests besides the examples'
// batch (add_default_role_to_users), element (fix_user_emails) and flow
// (user_sync): a set-based backfill, a flow into an HTTP endpoint, and a
// backfill declaring its own max in flight.
func dryRunDefs(t *testing.T, reg *engine.Registry) {
	t.Helper()
	rng, err := backfills.New(backfills.Definition[examples.User, struct{}]{
		Name:  "deactivate_users",
		Scope: func(db *gorm.DB, _ struct{}) *gorm.DB { return db.Where("active = ?", true) },
		ProcessRange: func(_ context.Context, r *backfills.Range[examples.User, struct{}]) error {
			return r.Update("active", false)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	toHTTP, err := flows.New(flows.Flow{
		Name:    "users_to_http",
		Source:  &sqlconn.Source{Table: "users", Columns: []string{"id", "email"}},
		Sink:    &httpconn.Sink{URL: "http://127.0.0.1:9/users"},
		Runtime: flows.Once{},
	})
	if err != nil {
		t.Fatal(err)
	}
	own, err := backfills.New(backfills.Definition[examples.User, struct{}]{
		Name:           "careful_backfill",
		ProcessElement: func(context.Context, *backfills.Element[examples.User, struct{}]) error { return nil },
		Options:        backfills.Options{MaxInFlight: 7, Sleep: 250 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []engine.Job{rng, toHTTP, own} {
		if err := reg.Register(j); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is every row of the tables a dry run could touch, as text.
func snapshot(t *testing.T, db *gorm.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"users", "user_backups"} {
		var rows []map[string]any
		if err := db.Table(table).Order("1").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d rows\n", table, len(rows))
		for _, r := range rows {
			fmt.Fprintln(&b, engine.NormalizeRow(r))
		}
	}
	return b.String()
}

func TestAPIDryRun(t *testing.T) {
	var db *gorm.DB
	e := newAPIEnvOn(t, true, func(o *web.Options) {
		db = o.DB
		dryRunDefs(t, o.Registry)
	})
	ctx := context.Background()
	before := snapshot(t, db)
	unchanged := func(what string) {
		t.Helper()
		if after := snapshot(t, db); after != before {
			t.Fatalf("%s changed the database", what)
		}
		page, err := e.alice.ListRuns(ctx, client.ListRunsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 0 {
			t.Fatalf("%s created %d run(s)", what, len(page.Items))
		}
	}

	two, hundred := 2, 100
	for _, tc := range []struct {
		def, params string
		// what the first sampled row's changed column is before → after;
		// "" for a flow (counts only).
		column, from, to string
		written          int64
	}{
		{"add_default_role_to_users", `{"role":"guest"}`, "role", "<nil>", "guest", 100},
		{"fix_user_emails", `{}`, "email", "  User1@Example.COM ", "user1@example.com", 100},
		{"deactivate_users", `{}`, "active", "true", "false", 100},
		{"user_sync", `{}`, "", "", "", 100},
	} {
		t.Run(tc.def, func(t *testing.T) {
			rep, err := e.alice.DryRun(ctx, api.CreateRun{Definition: tc.def, Params: json.RawMessage(tc.params), DryRunBatches: &two, BatchSize: &hundred})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			unchanged("a dry run of " + tc.def)
			if len(rep.Batches) != 2 || !rep.More || rep.Batches[0].Lo != "" || rep.Batches[1].Lo != rep.Batches[0].Hi {
				t.Fatalf("batches %+v, more %v; want the first 2 consecutive ranges and more", rep.Batches, rep.More)
			}
			b := rep.Batches[0]
			if b.Error != "" || b.Leaked {
				t.Fatalf("batch 1: error %q, leaked %v", b.Error, b.Leaked)
			}
			if b.Rows.Written != tc.written {
				t.Errorf("batch 1 would change %d rows, want %d", b.Rows.Written, tc.written)
			}
			if tc.column == "" {
				if rep.Sampled || len(b.Sample) != 0 {
					t.Errorf("a flow's dry run: sampled %v, %d rows; want counts only", rep.Sampled, len(b.Sample))
				}
				return
			}
			if !rep.Sampled || len(b.Sample) != engine.DryRunSampleRows {
				t.Fatalf("sampled %v, %d rows; want %d", rep.Sampled, len(b.Sample), engine.DryRunSampleRows)
			}
			row := b.Sample[0]
			if got := fmt.Sprint(row.Before[tc.column]) + " → " + fmt.Sprint(row.After[tc.column]); got != tc.from+" → "+tc.to {
				t.Errorf("row %s %s: %s, want %s → %s (changed %v)", row.Key, tc.column, got, tc.from, tc.to, row.Changed)
			}
		})
	}

	// Refusals and bad input: 422 naming the field, nothing changed.
	for _, tc := range []struct{ name, body, field, msg string }{
		{"http sink", `{"definition":"users_to_http","dry_run":true}`, "dry_run", "http sink"},
		{"zero batches", `{"definition":"fix_user_emails","dry_run":true,"dry_run_batches":0}`, "dry_run_batches", "between 1 and 20"},
		{"too many batches", `{"definition":"fix_user_emails","dry_run":true,"dry_run_batches":10000}`, "dry_run_batches", "between 1 and 20"},
		{"batches as text", `{"definition":"fix_user_emails","dry_run":true,"dry_run_batches":"3"}`, "dry_run_batches", ""},
		{"dry_run as text", `{"definition":"fix_user_emails","dry_run":"yes"}`, "dry_run", ""},
		{"batches without dry_run", `{"definition":"fix_user_emails","dry_run_batches":2}`, "dry_run_batches", "only for a dry run"},
		{"unknown definition", `{"definition":"nope","dry_run":true}`, "definition", "no definition"},
		{"bad params", `{"definition":"add_default_role_to_users","dry_run":true,"params":{"role":"king"}}`, "params.role", ""},
		{"bad batch size", `{"definition":"fix_user_emails","dry_run":true,"batch_size":0}`, "batch_size", ""},
	} {
		status, ae, _ := e.raw(http.MethodPost, "/api/v1/runs", aliceToken, tc.body)
		if status != http.StatusUnprocessableEntity || ae.Field != tc.field || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: %d %s %q; want 422 on %s saying %q", tc.name, status, ae.Field, ae.Message, tc.field, tc.msg)
		}
	}
	unchanged("refused dry runs")
}

func TestAPIDryRunViewerRefused(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		o.Auth.Roles = map[string]web.Role{"bob": web.RoleViewer}
	})
	status, _, _ := e.raw(http.MethodPost, "/api/v1/runs", bobToken, `{"definition":"fix_user_emails","dry_run":true}`)
	if status != http.StatusForbidden {
		t.Errorf("a viewer's dry run: %d, want 403 (it runs the definition's code)", status)
	}
}

func TestAPIRunDefaults(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		o.RunDefaults = control.Defaults{Sleep: 100 * time.Millisecond, MaxInFlight: 2, RowsPerSecond: 500}
		dryRunDefs(t, o.Registry)
	})
	ctx := context.Background()
	d, err := e.alice.Definition(ctx, "fix_user_emails")
	if err != nil {
		t.Fatal(err)
	}
	if d.Defaults.SleepMS != 100 || d.Defaults.MaxInFlight != 2 || d.Defaults.RowsPerSecond != 500 || d.Defaults.BatchSize != 500 ||
		d.DefaultsFrom["sleep_ms"] != "DRIPFLOW_DEFAULT_SLEEP_MS" || d.DefaultsFrom["max_in_flight"] != "DRIPFLOW_DEFAULT_MAX_IN_FLIGHT" {
		t.Errorf("effective defaults %+v from %v; want sleep 100 ms, 2 in flight, 500 rows/s from the environment, batch size 500 of the definition", d.Defaults, d.DefaultsFrom)
	}
	// A definition's own options come before the process's.
	d, err = e.alice.Definition(ctx, "careful_backfill")
	if err != nil {
		t.Fatal(err)
	}
	if d.Defaults.SleepMS != 250 || d.Defaults.MaxInFlight != 7 || d.Defaults.RowsPerSecond != 500 || d.DefaultsFrom["max_in_flight"] != "definition" {
		t.Errorf("careful_backfill's defaults %+v from %v; want its own sleep and max in flight, the environment's rate", d.Defaults, d.DefaultsFrom)
	}
	if _, err := e.alice.Definition(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown definition: %v", err)
	}

	run, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails"})
	if err != nil {
		t.Fatal(err)
	}
	if o := run.Options; o.SleepMS != 100 || o.MaxInFlight != 2 || o.RowsPerSecond != 500 {
		t.Errorf("a run without options got %+v; want the process's defaults", o)
	}
	zero, one := 0, 1
	var zeroMS int64
	run, err = e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails", SleepMS: &zeroMS, RowsPerSecond: &zero, MaxInFlight: &one})
	if err != nil {
		t.Fatal(err)
	}
	if o := run.Options; o.SleepMS != 0 || o.MaxInFlight != 1 || o.RowsPerSecond != 0 {
		t.Errorf("a run with explicit 0 sleep and rate got %+v; want 0 kept (none, unlimited)", o)
	}
	run, err = e.alice.CreateRun(ctx, api.CreateRun{Definition: "careful_backfill"})
	if err != nil {
		t.Fatal(err)
	}
	if o := run.Options; o.SleepMS != 250 || o.MaxInFlight != 7 || o.RowsPerSecond != 500 {
		t.Errorf("careful_backfill's run got %+v; want its own 250 ms and 7, the environment's 500 rows/s", o)
	}
}
