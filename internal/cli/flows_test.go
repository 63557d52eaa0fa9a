package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	_ "github.com/dripflow/dripflow/pkg/connectors/file" // the starter spec's sink
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

// specServer is a web handler on a SQL store (SQLite), which keeps flow
// specs, with the example tables and definitions.
func specServer(t *testing.T) (string, store.Store) {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.SQLiteURL(t)
	if err := sqlstore.MigrateURL(ctx, dbURL); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, dbURL, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := examples.Migrate(ctx, st.DB()); err != nil {
		t.Fatal(err)
	}
	if err := engine.DefaultRegistry.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	h, err := web.Handler(web.Options{Store: st, DB: st.DB(), Auth: web.Auth{Tokens: map[string]string{token: "erin"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, st
}

func runFlows(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		return map[string]string{"DRIPFLOW_URL": url, "DRIPFLOW_TOKEN": token}[k]
	}}
	code := Flows(context.Background(), args, env)
	return code, out.String(), errb.String()
}

// The spec way end to end: generate a starter spec, validate it, apply it
// (dry run, create, unchanged, a change with its diff), read it back,
// and delete it.
func TestFlowsApply(t *testing.T) {
	url, _ := specServer(t)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := New([]string{"flow", "UsersCopy", "--yaml", "--dir", dir}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
		t.Fatalf("new flow --yaml: %d %s", code, errb.String())
	}
	file := filepath.Join(dir, "users_copy.yaml")
	if !strings.Contains(out.String(), file) {
		t.Fatalf("new flow --yaml says %q, want the file %s", out.String(), file)
	}

	code, stdout, stderr := runFlows(t, url, "validate", "-f", file)
	if code != ExitOK || !strings.Contains(stdout, "valid: flow users_copy, runtime every 5m0s, delivery idempotent") {
		t.Fatalf("validate the starter spec: %d %q %q", code, stdout, stderr)
	}
	code, stdout, stderr = runFlows(t, url, "apply", "-f", file, "--dry-run")
	if code != ExitOK || !strings.Contains(stdout, "would be created") {
		t.Fatalf("apply --dry-run: %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr := runFlows(t, url, "show", "users_copy"); code != ExitError || !strings.Contains(stderr, "404") {
		t.Fatalf("a dry run stored the flow: %d %q", code, stderr)
	}

	code, stdout, stderr = runFlows(t, url, "apply", "-f", file)
	if code != ExitOK || !strings.Contains(stdout, "flow users_copy created, version 1") {
		t.Fatalf("apply: %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runFlows(t, url, "apply", "-f", file)
	if code != ExitOK || strings.TrimSpace(stdout) != "flow users_copy unchanged, version 1" {
		t.Fatalf("apply again: %d %q", code, stdout)
	}

	spec, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(spec), "runtime: every 5m", "runtime: every 10m", 1)
	changed = strings.Replace(changed, "batch_size: 1000", "batch_size: 200", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runFlows(t, url, "apply", "-f", file, "--dry-run")
	if code != ExitOK || !strings.Contains(stdout, "+runtime: every 10m") || !strings.Contains(stdout, "would be updated from version 1") {
		t.Fatalf("apply --dry-run of a change: %d %q", code, stdout)
	}
	code, stdout, _ = runFlows(t, url, "apply", "-f", file)
	for _, want := range []string{"--- users_copy version 1 (stored)", "+++ " + file, "-  batch_size: 1000", "+  batch_size: 200",
		"-runtime: every 5m", "+runtime: every 10m", "flow users_copy updated, version 1 -> 2"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("apply of a change: output lacks %q:\n%s", want, stdout)
		}
	}
	if code != ExitOK || strings.Contains(stdout, "select") {
		t.Errorf("apply of a change: exit %d, or unchanged lines far from the change shown:\n%s", code, stdout)
	}

	// The same spec as JSON is the same flow: unchanged.
	sp, err := flows.ParseSpecYAML([]byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(sp, "", "  ")
	jsonFile := filepath.Join(dir, "users_copy.json")
	os.WriteFile(jsonFile, js, 0o644)
	if code, stdout, stderr := runFlows(t, url, "apply", "-f", jsonFile); code != ExitOK || !strings.Contains(stdout, "unchanged, version 2") {
		t.Fatalf("apply of the JSON form: %d %q %q", code, stdout, stderr)
	}

	// What show prints applies back as no change (settings come back with
	// their keys in another order than the file had them).
	code, shown, _ := runFlows(t, url, "show", "users_copy", "--output", "yaml")
	if code != ExitOK {
		t.Fatalf("show --output yaml: exit %d", code)
	}
	shownFile := filepath.Join(dir, "shown.yaml")
	os.WriteFile(shownFile, []byte(shown), 0o644)
	if code, stdout, stderr := runFlows(t, url, "apply", "-f", shownFile); code != ExitOK || strings.TrimSpace(stdout) != "flow users_copy unchanged, version 2" {
		t.Fatalf("apply of what show printed: %d %q %q", code, stdout, stderr)
	}
	compact, _ := json.Marshal(sp)
	reordered := strings.Replace(string(compact), `{"dir":"/var/lib/dripflow/users_copy","format":"jsonl"}`, `{"format":"jsonl","dir":"/var/lib/dripflow/users_copy"}`, 1)
	if reordered == string(compact) {
		t.Fatalf("the sink settings are not where the test expects them: %s", compact)
	}
	reorderedFile := filepath.Join(dir, "reordered.json")
	os.WriteFile(reorderedFile, []byte(reordered), 0o644)
	if code, stdout, _ := runFlows(t, url, "apply", "-f", reorderedFile); code != ExitOK || strings.TrimSpace(stdout) != "flow users_copy unchanged, version 2" {
		t.Fatalf("apply with settings in another order: %d %q", code, stdout)
	}

	code, stdout, _ = runFlows(t, url, "show", "users_copy")
	if code != ExitOK || !strings.Contains(stdout, "users_copy (spec, version 2)") || !strings.Contains(stdout, "runtime: every 10m") || !strings.Contains(stdout, "inactive") {
		t.Fatalf("show: %d %q", code, stdout)
	}
	code, stdout, _ = runFlows(t, url, "show", "users_copy", "--version", "1", "--output", "yaml")
	if code != ExitOK || !strings.Contains(stdout, "runtime: every 5m") || strings.Contains(stdout, "version") {
		t.Fatalf("show --version 1 --output yaml: %d %q", code, stdout)
	}
	if _, err := flows.ParseSpecYAML([]byte(stdout)); err != nil {
		t.Fatalf("show --output yaml is not a spec apply reads back: %v", err)
	}
	code, stdout, _ = runFlows(t, url, "list")
	if code != ExitOK || !strings.Contains(stdout, "ORIGIN") || !regexpLine(stdout, `users_copy\s+spec\s+2\s+inactive\s+every 10m0s`) ||
		!regexpLine(stdout, `user_sync\s+code\s+-\s+inactive\s+every 30s`) {
		t.Fatalf("list: %d\n%s", code, stdout)
	}
	code, stdout, _ = runFlows(t, url, "list", "--output", "json")
	var page api.Page[api.Flow]
	if code != ExitOK || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Items) != 2 {
		t.Fatalf("list --output json: %d %q", code, stdout)
	}

	if code, stdout, _ := runFlows(t, url, "activate", "users_copy"); code != ExitOK || !strings.Contains(stdout, "users_copy is active") {
		t.Fatalf("activate: %d %q", code, stdout)
	}
	if code, stdout, _ := runFlows(t, url, "deactivate", "users_copy"); code != ExitOK || !strings.Contains(stdout, "users_copy is inactive") {
		t.Fatalf("deactivate: %d %q", code, stdout)
	}

	// One run of a flow at a time: the second trigger says which run holds it.
	code, stdout, stderr = runFlows(t, url, "trigger", "user_sync", "--output", "json")
	var r api.Run
	if code != ExitOK || json.Unmarshal([]byte(stdout), &r) != nil || r.Definition != "user_sync" || r.CreatedBy != "erin" {
		t.Fatalf("trigger: %d %q %q", code, stdout, stderr)
	}
	code, _, stderr = runFlows(t, url, "trigger", "user_sync")
	if code != ExitError || !strings.Contains(stderr, "dripflow flows trigger") || !strings.Contains(stderr, "run "+r.ID) || !strings.Contains(stderr, "409") {
		t.Fatalf("second trigger: %d %q", code, stderr)
	}
	code, _, stderr = runFlows(t, url, "trigger", "user_sync", "--output", "json")
	var ae api.Error
	if code != ExitError || json.Unmarshal([]byte(stderr), &ae) != nil || ae.Error.RunID != r.ID {
		t.Fatalf("second trigger --output json: %d %q; want the live run id", code, stderr)
	}

	if code, _, stderr := runFlows(t, url, "delete", "user_sync"); code != ExitError || !strings.Contains(stderr, "read-only") {
		t.Fatalf("delete a code flow: %d %q", code, stderr)
	}
	if code, stdout, _ := runFlows(t, url, "delete", "users_copy"); code != ExitOK || !strings.Contains(stdout, "deleted flow users_copy") {
		t.Fatalf("delete: %d %q", code, stdout)
	}
	if code, _, stderr := runFlows(t, url, "show", "users_copy"); code != ExitError || !strings.Contains(stderr, "404") {
		t.Fatalf("show a deleted flow: %d %q", code, stderr)
	}
}

func regexpLine(out, pattern string) bool {
	for _, l := range strings.Split(out, "\n") {
		if ok, _ := regexp.MatchString(pattern, l); ok {
			return true
		}
	}
	return false
}

// Refused specs print the failing field and exit 1; usage errors exit 2.
func TestFlowsErrors(t *testing.T) {
	url, _ := specServer(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "name: bad_flow\nsource:\n  kind: sql\n  settings:\n    table: users\nsink:\n  kind: file\n  settings:\n    dir: /tmp/x\n    format: jsonl\n"
	for _, tc := range []struct {
		name, content, want string
	}{
		{"bad sink setting", strings.Replace(base, "format: jsonl", "format: xml", 1), "sink.format"},
		{"unknown source kind", strings.Replace(base, "kind: sql", "kind: kafka", 1), "source.kind"},
		{"bad runtime", base + "runtime: every tuesday\n", "runtime"},
		{"bad transform", base + "transforms:\n  - type: filter\n    where: id => 3\n", "transforms[0].where"},
		{"unknown field", base + "schedule: hourly\n", "schedule"},
		{"bad name", strings.Replace(base, "bad_flow", "Bad Flow", 1), "name"},
		{"not YAML", "name: [a\n", "flow spec"},
	} {
		f := write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.content)
		for _, cmd := range []string{"apply", "validate"} {
			code, _, stderr := runFlows(t, url, cmd, "-f", f)
			if code != ExitError || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "dripflow flows "+cmd) {
				t.Errorf("%s: flows %s: exit %d %q; want 1 naming %q", tc.name, cmd, code, stderr, tc.want)
			}
		}
	}
	// The code flow's name: read-only.
	f := write("user_sync.yaml", strings.Replace(base, "bad_flow", "user_sync", 1))
	if code, _, stderr := runFlows(t, url, "apply", "-f", f); code != ExitError || !strings.Contains(stderr, "defined in code") {
		t.Errorf("apply over a code flow: %d %q", code, stderr)
	}
	if code, _, stderr := runFlows(t, url, "apply", "-f", filepath.Join(dir, "missing.yaml")); code != ExitError || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("apply of a missing file: %d %q", code, stderr)
	}
	// Nothing was stored.
	if code, stdout, _ := runFlows(t, url, "list"); code != ExitOK || strings.Contains(stdout, "bad_flow") {
		t.Errorf("list after refused specs: %d %q", code, stdout)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"apply"}, {"validate"}, {"show"}, {"delete"}, {"show", "a", "b"},
		{"list", "--output", "yaml"}, {"apply", "-f", f, "extra"}} {
		if code, _, _ := runFlows(t, "http://127.0.0.1:1", args...); code != ExitUsage {
			t.Errorf("flows %v: exit %d, want %d", args, code, ExitUsage)
		}
	}
	if code, _, stderr := runFlows(t, "http://127.0.0.1:1", "list"); code != ExitError || stderr == "" {
		t.Errorf("unreachable server: exit %d %q", code, stderr)
	}
}

// The starter spec compiles as it is, and is not written over a file.
func TestNewFlowYAML(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := New([]string{"flow", "orders_export", "--yaml", "--dir", dir}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
		t.Fatalf("new flow --yaml: %d %s", code, errb.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "orders_export.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := flows.ParseSpecYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Compile()
	if err != nil || f.Name != "orders_export" || len(f.Transforms) != 2 {
		t.Fatalf("starter spec: %+v, %v", f, err)
	}
	if !strings.Contains(string(b), "# Flow spec orders_export") || !strings.Contains(string(b), "dripflow flows apply -f "+filepath.Join(dir, "orders_export.yaml")) {
		t.Errorf("starter spec lacks its comments:\n%s", b)
	}
	errb.Reset()
	if code := New([]string{"flow", "orders_export", "--yaml", "--dir", dir}, Env{Stdout: &out, Stderr: &errb}); code != ExitError || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("new flow --yaml over an existing file: %d %q", code, errb.String())
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	for _, tc := range []struct {
		name, b, want string
	}{
		{"equal", a, ""},
		{"one changed line", strings.Replace(a, "e", "E", 1), "--- old\n+++ new\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"},
		{"appended", a + "k\n", "--- old\n+++ new\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n"},
		{"two hunks", strings.Replace(strings.Replace(a, "a", "A", 1), "j", "J", 1),
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n d\n@@ -7,4 +7,4 @@\n g\n h\n i\n-j\n+J\n"},
	} {
		if got := unifiedDiff("old", "new", a, tc.b); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}
