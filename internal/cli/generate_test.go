package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

func TestNames(t *testing.T) {
	for in, want := range map[string][2]string{
		"FixUserEmails":   {"FixUserEmails", "fix_user_emails"},
		"fix_user_emails": {"FixUserEmails", "fix_user_emails"},
		"user_sync":       {"UserSync", "user_sync"},
		"HTTPBackfill":    {"HttpBackfill", "http_backfill"},
		"Backfill2":       {"Backfill2", "backfill2"},
	} {
		camel, snake, err := names(in)
		if err != nil || camel != want[0] || snake != want[1] {
			t.Errorf("names(%q) = %q, %q, %v; want %q, %q", in, camel, snake, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"", "2fast", "has-dash", "a b", "../x"} {
		if _, _, err := names(bad); err == nil {
			t.Errorf("names(%q) accepted", bad)
		}
	}
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func gocmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// An initialised application with generated definitions builds, and its dev
// main runs the generated backfills to success.
func TestInitAndGeneratedDefinitionsRunInDevMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb}
	if code := Init([]string{"example.com/shop", "--dir", dir}, env); code != ExitOK {
		t.Fatalf("init: %d %s", code, errb.String())
	}
	for _, args := range [][]string{
		{"backfill", "FixThings", "--dir", filepath.Join(dir, "app/backfills")},
		{"backfill", "touch_things", "--element", "--dir", filepath.Join(dir, "app/backfills")},
		{"backfill", "set_things", "--range", "--dir", filepath.Join(dir, "app/backfills")},
		{"flow", "copy_things", "--dir", filepath.Join(dir, "app/flows")},
	} {
		if code := New(args, env); code != ExitOK {
			t.Fatalf("new %v: %d %s", args, code, errb.String())
		}
	}
	if code := New([]string{"backfill", "FixThings", "--dir", filepath.Join(dir, "app/backfills")}, env); code != ExitError {
		t.Fatalf("generating over an existing file: exit %d, want %d", code, ExitError)
	}
	gocmd(t, dir, "mod", "tidy")
	gocmd(t, dir, "vet", "./...")
	bin := filepath.Join(dir, "devbin")
	gocmd(t, dir, "build", "-o", bin, "./cmd/dev")

	// The tables the generated placeholder models name, with rows to change.
	dbURL := testenv.SQLiteURL(t)
	db, err := sqlstore.OpenDB(context.Background(), dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"fix_things_records", "touch_things_records", "set_things_records"} {
		if err := db.Exec("CREATE TABLE " + table + " (id INTEGER PRIMARY KEY, value TEXT)").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 2500) INSERT INTO " + table + " SELECT i, NULL FROM n").Error; err != nil {
			t.Fatal(err)
		}
	}
	if s, err := db.DB(); err == nil {
		s.Close()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--http-addr", addr)
	cmd.Env = append(os.Environ(), "DRIPFLOW_DATABASE_URL="+dbURL, "DRIPFLOW_REDIS_URL=", "DRIPFLOW_METRICS_ADDR=off")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("dev output:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dev server did not come up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, def := range []string{"fix_things", "touch_things", "set_things"} {
		resp, err := http.Post(base+"/api/v1/runs", "application/json", strings.NewReader(fmt.Sprintf(`{"definition":%q}`, def)))
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ ID, Status string }
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("start %s: %d", def, resp.StatusCode)
		}
		deadline := time.Now().Add(30 * time.Second)
		for r.Status != "succeeded" {
			if time.Now().After(deadline) || r.Status == "failed" {
				t.Fatalf("run of %s is %s", def, r.Status)
			}
			time.Sleep(200 * time.Millisecond)
			resp, err := http.Get(base + "/api/v1/runs/" + r.ID)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
		}
	}
	check, err := sqlstore.OpenDB(context.Background(), dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := check.DB(); err == nil {
			s.Close()
		}
	}()
	for _, table := range []string{"fix_things_records", "touch_things_records", "set_things_records"} {
		var done int64
		check.Table(table).Where("value = ?", "done").Count(&done)
		if done != 2500 {
			t.Errorf("%s: %d rows set to done, want 2500", table, done)
		}
	}
	// The generated flow is registered and can be activated.
	resp, err := http.Get(base + "/api/v1/flows")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var flows struct{ Items []struct{ Name string } }
	json.NewDecoder(resp.Body).Decode(&flows)
	if len(flows.Items) != 1 || flows.Items[0].Name != "copy_things" {
		t.Fatalf("flows: %+v", flows.Items)
	}
}
