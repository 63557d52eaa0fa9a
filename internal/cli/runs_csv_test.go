package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// TestRunsStartWithCSVParam: `runs start --param emails=@file.csv` sends
// the file's text as the CSV param, stored with the run as it was; a bad
// file is refused by the server with its reason and creates nothing; a
// file over the limit or missing is refused before any request.
func TestRunsStartWithCSVParam(t *testing.T) {
	url, st := server(t)
	dir := t.TempDir()
	text := "id,email\n1,<a&b>@example.org\n2,\"x,y@example.org\"\n"
	good := filepath.Join(dir, "emails.csv")
	if err := os.WriteFile(good, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, url, "start", "import_user_emails", "--param", "emails=@"+good, "--output", "json")
	if code != ExitOK {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	var r api.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	stored, err := st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Emails string }
	if err := json.Unmarshal(stored.Params, &p); err != nil || p.Emails != text {
		t.Fatalf("stored params %s (%v); want the file's text", stored.Params, err)
	}
	if strings.Contains(string(stored.Params), `\u003c`) {
		t.Errorf("the CSV was stored HTML-escaped: %s", stored.Params)
	}

	count := func() int {
		pg, err := st.ListRuns(context.Background(), store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(pg.Items)
	}
	before := count()
	ragged := filepath.Join(dir, "ragged.csv")
	os.WriteFile(ragged, []byte("id,email\n1\n"), 0o644)
	code, _, errOut = run(t, url, "start", "import_user_emails", "--param", "emails=@"+ragged)
	if code != ExitError || !strings.Contains(errOut, "emails") || !strings.Contains(errOut, "line 2 has 1 fields, the header has 2") {
		t.Errorf("ragged CSV: exit %d, %q", code, errOut)
	}
	huge := filepath.Join(dir, "huge.csv")
	os.WriteFile(huge, []byte("id,email\n"+strings.Repeat("1,a@b.c\n", params.MaxCSVBytes/8+1)), 0o644)
	code, _, errOut = run(t, url, "start", "import_user_emails", "--param", "emails=@"+huge)
	if code != ExitUsage || !strings.Contains(errOut, "a file param holds at most 5,242,880 bytes") {
		t.Errorf("huge CSV: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, url, "start", "import_user_emails", "--param", "emails=@"+filepath.Join(dir, "nope.csv"))
	if code != ExitUsage || !strings.Contains(errOut, "nope.csv") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(t, url, "start", "import_user_emails", "--param", "emails")
	if code != ExitUsage || !strings.Contains(errOut, "NAME=VALUE") {
		t.Errorf("--param without =: exit %d, %q", code, errOut)
	}
	if n := count(); n != before {
		t.Errorf("refused starts created %d runs", n-before)
	}

	// A typed --param: a number goes as a number, text as text.
	code, out, errOut = run(t, url, "start", "add_default_role_to_users", "--param", "role=guest", "--output", "json")
	if code != ExitOK || !strings.Contains(out, `"role": "guest"`) && !strings.Contains(out, `"role":"guest"`) {
		t.Errorf("--param role=guest: exit %d\n%s%s", code, out, errOut)
	}
}

// TestRunsListByKind: `runs list --kind` lists one kind; another value is
// a usage error before any request.
func TestRunsListByKind(t *testing.T) {
	url, st := server(t)
	ctx := context.Background()
	opts := store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}
	b, err := st.CreateRun(ctx, store.NewRun{Definition: "add_default_role_to_users", Kind: store.KindBackfill, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.CreateRun(ctx, store.NewRun{Definition: "user_sync", Kind: store.KindFlow, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]int64{"backfill": b.ID, "flow": f.ID} {
		code, out, errOut := run(t, url, "list", "--kind", kind, "--output", "json")
		var page api.Page[api.Run]
		if code != ExitOK || json.Unmarshal([]byte(out), &page) != nil {
			t.Fatalf("--kind %s: exit %d\n%s%s", kind, code, out, errOut)
		}
		if len(page.Items) != 1 || page.Items[0].ID != strconv.FormatInt(want, 10) {
			t.Errorf("--kind %s: %+v, want run %d alone", kind, page.Items, want)
		}
	}
	code, _, errOut := run(t, url, "list", "--kind", "flows")
	if code != ExitUsage || !strings.Contains(errOut, "--kind must be backfill or flow") {
		t.Errorf("--kind flows: exit %d, %q", code, errOut)
	}
}
