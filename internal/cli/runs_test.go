package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

const token = "cli-test-token-0123456789"

func server(t *testing.T) (string, store.Store) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenDB(ctx, testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := examples.Migrate(ctx, db); err != nil {
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
	return srv.URL, st
}

func run(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		return map[string]string{"DRIPFLOW_URL": url, "DRIPFLOW_TOKEN": token}[k]
	}}
	code := Runs(context.Background(), args, env)
	return code, out.String(), errb.String()
}

func TestRunsCommands(t *testing.T) {
	url, st := server(t)
	code, out, errs := run(t, url, "start", "add_default_role_to_users", "--params", `{"role":"guest"}`, "--batch-size", "50",
		"--max-attempts", "7", "--error-budget", "3", "--batch-timeout", "1.5s", "--output", "json")
	if code != ExitOK {
		t.Fatalf("start: %d %s", code, errs)
	}
	var r api.Run
	var params map[string]string
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.CreatedBy != "erin" || r.Options.BatchSize != 50 ||
		r.Options.MaxAttempts != 7 || r.Options.ErrorBudget != 3 || r.Options.BatchTimeoutMS != 1500 ||
		json.Unmarshal(r.Params, &params) != nil || params["role"] != "guest" {
		t.Fatalf("start output %q: %v", out, err)
	}
	code, out, _ = run(t, url, "list")
	if code != ExitOK || !strings.Contains(out, "add_default_role_to_users") || !strings.Contains(out, "scheduled") || !strings.Contains(out, "erin") {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ = run(t, url, "show", r.ID)
	if code != ExitOK || !strings.Contains(out, "status") || !strings.Contains(out, "scheduled") {
		t.Fatalf("show: %d %q", code, out)
	}
	// Illegal transition: exit 1 with the API's message.
	code, _, errs = run(t, url, "pause", r.ID)
	if code != ExitError || !strings.Contains(errs, "cannot go from scheduled to paused") {
		t.Fatalf("pause a scheduled run: %d %q", code, errs)
	}
	code, _, errs = run(t, url, "pause", r.ID, "--output", "json")
	var ae api.Error
	if code != ExitError || json.Unmarshal([]byte(errs), &ae) != nil || ae.Error.Code != "conflict" {
		t.Fatalf("pause --output json: %d %q", code, errs)
	}
	code, out, _ = run(t, url, "cancel", r.ID)
	if code != ExitOK || !strings.Contains(out, "cancelled") {
		t.Fatalf("cancel: %d %q", code, out)
	}

	// A run scheduled for later: reschedule it, then start it now.
	_, out, _ = run(t, url, "start", "fix_user_emails", "--start-at", "2099-01-01T00:00:00Z", "--output", "json")
	var later api.Run
	if err := json.Unmarshal([]byte(out), &later); err != nil || later.Status != "scheduled" {
		t.Fatalf("start --start-at: %q %v", out, err)
	}
	code, out, _ = run(t, url, "reschedule", later.ID, "--at", "2098-06-01T12:00:00+02:00", "--output", "json")
	var moved api.Run
	if code != ExitOK || json.Unmarshal([]byte(out), &moved) != nil || moved.StartAt == nil || !moved.StartAt.Equal(time.Date(2098, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("reschedule: %d %q", code, out)
	}
	if code, _, errs := run(t, url, "reschedule", later.ID, "--at", "tomorrow"); code != ExitUsage || !strings.Contains(errs, "RFC 3339") {
		t.Fatalf("reschedule --at tomorrow: %d %q", code, errs)
	}
	code, out, _ = run(t, url, "start-now", later.ID)
	if code != ExitOK || !strings.Contains(out, "running") {
		t.Fatalf("start-now: %d %q", code, out)
	}
	code, _, errs = run(t, url, "start", "no_such_thing")
	if code != ExitError || !strings.Contains(errs, "no definition named") {
		t.Fatalf("start unknown: %d %q", code, errs)
	}
	code, _, errs = run(t, url, "show", "424242")
	if code != ExitError || !strings.Contains(errs, "404") {
		t.Fatalf("show unknown: %d %q", code, errs)
	}

	// watch: exit code follows the run's end.
	for _, tc := range []struct {
		end  store.RunState
		code int
	}{{store.RunSucceeded, ExitOK}, {store.RunFailed, ExitFailed}, {store.RunCancelled, ExitCancelled}} {
		_, out, _ := run(t, url, "start", "fix_user_emails", "--output", "json")
		var w api.Run
		json.Unmarshal([]byte(out), &w)
		id, _ := strconv.ParseInt(w.ID, 10, 64)
		st.TransitionRun(context.Background(), id, store.RunRunning, nil)
		go func() {
			time.Sleep(1200 * time.Millisecond)
			st.TransitionRun(context.Background(), id, tc.end, &store.TransitionOptions{Error: "boom"})
		}()
		code, out, _ := run(t, url, "watch", w.ID)
		if code != tc.code || !strings.Contains(out, "run "+w.ID) || !strings.Contains(out, string(tc.end)) {
			t.Errorf("watch a run ending %s: exit %d, output %q", tc.end, code, out)
		}
	}
}

func TestRunsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"show"}, {"show", "1", "2"}, {"list", "--output", "yaml"}, {"start"}, {"start", "x", "--params", "{"}, {"start", "x", "--start-at", "tomorrow"},
		{"start", "x", "--batch-timeout", "-1s"}, {"start", "x", "--batch-timeout", "1500us"}, {"start", "x", "--max-attempts", "many"}} {
		if code, _, _ := run(t, "http://127.0.0.1:1", args...); code != ExitUsage {
			t.Errorf("runs %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if code, _, errs := run(t, "http://127.0.0.1:1", "list"); code != ExitError || errs == "" {
		t.Errorf("unreachable server: exit %d %q", code, errs)
	}
}
