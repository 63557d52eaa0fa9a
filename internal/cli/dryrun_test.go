package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

// dryServer is server with 30 demo users, and its database.
func dryServer(t *testing.T) (string, store.Store, *gorm.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenDB(ctx, testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := examples.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := examples.Seed(ctx, db, 30); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.DefaultRegistry.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	h, err := web.Handler(web.Options{Store: st, DB: db, Auth: web.Auth{Tokens: map[string]string{token: "erin"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, st, db
}

func TestRunsStartDryRun(t *testing.T) {
	url, st, db := dryServer(t)
	users := func() string {
		var rows []map[string]any
		if err := db.Table("users").Order("id").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(rows)
	}
	before := users()
	code, out, errs := run(t, url, "start", "add_default_role_to_users", "--params", `{"role":"guest"}`, "--batch-size", "4", "--dry-run", "--dry-run-batches", "2")
	if code != ExitOK {
		t.Fatalf("start --dry-run: %d %s", code, errs)
	}
	t.Log(out)
	for _, want := range []string{
		"Dry run of add_default_role_to_users: nothing was changed and no run was created.",
		"BATCH", "RANGE", "WOULD CHANGE",
		"1      (start, 7]", "2      (7, 15]",
		`1: role null → "guest"; updated_at`,
		"The run would go on after these 2 batches of 4.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = run(t, url, "start", "fix_user_emails", "--dry-run", "--output", "json")
	var rep api.DryRun
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Batches) != 1 || rep.Batches[0].Rows.Written != 30 || len(rep.Batches[0].Sample) != 5 {
		t.Fatalf("start --dry-run --output json: %d %s %s", code, out, errs)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--dry-run", "--dry-run-batches", "0"}, ExitError, "dry_run_batches"},
		{[]string{"--dry-run", "--dry-run-batches", "21"}, ExitError, "between 1 and 20"},
		{[]string{"--dry-run-batches", "2"}, ExitError, "only for a dry run"},
		{[]string{"--dry-run", "--watch"}, ExitUsage, "no run to --watch"},
		{[]string{"--dry-run", "--params", `{"role":"king"}`}, ExitError, "role"},
	} {
		code, _, errs := run(t, url, append([]string{"start", "add_default_role_to_users"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: %d %q; want %d saying %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	if users() != before {
		t.Error("a dry run changed the users")
	}
	page, err := st.ListRuns(context.Background(), store.RunFilter{})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("dry runs created %d run(s) (%v)", len(page.Items), err)
	}
}
