package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/cli"
	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
)

const webToken = "e2e-admin-token-0123456789abcdef"

// web starts the web process on a free loopback port and returns its base
// URL once it answers.
func (c *cluster) web() string {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c.env = append(c.env, "DRIPFLOW_AUTH_TOKENS=admin:"+webToken+":admin")
	p := c.start("web", "--http-addr="+addr)
	base := "http://" + addr
	c.waitFor("the web process", 30*time.Second, func() bool {
		select {
		case <-p.done:
			c.t.Fatalf("web exited; its log:\n%s", c.logOf(p))
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func (c *cluster) logOf(p *proc) string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// call makes an API request as the admin token, as curl would.
func call(t *testing.T, method, url, contentType, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+webToken)
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Issue 11's "done when", from outside: a flow from a Redis stream to a
// PostgreSQL table created with one POST (curl's JSON) on the web
// process, and one from a PostgreSQL table to JSONL files applied from
// YAML with `dripflow flows apply -f`; both activated through the API, run
// by a scheduler and workers that never saw them compiled, a worker
// SIGKILLed under each, and both shown with their offset or watermark on
// the flow's page. Nothing is lost or duplicated.
func TestProcessSpecFlowsThroughWebAndCLI(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const entries, items = 3_000, 6_000
	eventsURL := testenv.RedisDB(t)
	t.Setenv("DRIPFLOW_CONNECTIONS", e2edefs.EventsConnection+"="+eventsURL+","+e2edefs.WarehouseConnection+"="+c.dbURL)
	if err := c.db.Exec(e2edefs.StreamRowsDDL).Error; err != nil {
		t.Fatal(err)
	}
	c.seedItems(items)
	const stream = "e2e:api-events"
	_, lastID := seedStream(t, eventsURL, stream, entries)

	base := c.web()
	c.scheduler()
	w1 := c.worker(2)
	c.worker(2)

	// Bad specs change nothing: 422 with the field.
	code, body := call(t, "POST", base+"/api/v1/flows", "application/json",
		`{"name":"e2e_api_stream","source":{"kind":"redisstream","settings":{"stream":"x"}},"sink":{"kind":"sql","settings":{"table":"t","mode":"upsert"}}}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"field"`) {
		t.Fatalf("bad spec: %d %s", code, body)
	}
	if _, err := c.st.GetDefinition(ctx, "e2e_api_stream"); err == nil {
		t.Fatalf("a refused spec was stored")
	}

	// One curl: the stream flow, as JSON.
	spec := fmt.Sprintf(`{"name": "e2e_api_stream",
		"description": "events to a table, created with one POST",
		"source": {"kind": "redisstream", "settings": {"connection": %q, "stream": %q, "group": "api", "id_field": "entry_id"}},
		"transforms": [{"type": "select", "fields": ["entry_id", "n"]}, {"type": "e2e_slow", "sleep_ms": 300}],
		"sink": {"kind": "sql", "settings": {"connection": %q, "table": "e2e_stream_rows", "mode": "upsert", "key": ["entry_id"]}},
		"runtime": "every 1s",
		"options": {"batch_size": 100, "max_in_flight": 4},
		"max_batches_per_run": 1000}`, e2edefs.EventsConnection, stream, e2edefs.WarehouseConnection)
	code, body = call(t, "POST", base+"/api/v1/flows", "application/json", spec)
	if code != http.StatusCreated {
		t.Fatalf("create the stream flow: %d %s", code, body)
	}
	if code, body = call(t, "POST", base+"/api/v1/flows", "application/json", spec); code != http.StatusConflict {
		t.Fatalf("creating it twice: %d %s, want 409", code, body)
	}

	// The table flow from YAML, with the CLI.
	out := t.TempDir()
	yamlFile := filepath.Join(t.TempDir(), "items.yaml")
	yaml := fmt.Sprintf(`name: e2e_cli_files
description: items to JSONL, applied with dripflow flows apply
source:
  kind: sql
  settings:
    table: e2e_items
    columns: [id, val]
    cursor: [id]
transforms:
  - type: e2e_slow
    sleep_ms: 500
sink:
  kind: file
  settings:
    dir: %s
    format: jsonl
    max_records: 200
options:
  batch_size: 400
  max_in_flight: 4
`, out)
	if err := os.WriteFile(yamlFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := cli.Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		return map[string]string{"DRIPFLOW_URL": base, "DRIPFLOW_TOKEN": webToken}[k]
	}}
	if code := cli.Flows(ctx, []string{"apply", "-f", yamlFile}, env); code != cli.ExitOK || !strings.Contains(stdout.String(), "created") {
		t.Fatalf("flows apply: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := cli.Flows(ctx, []string{"apply", "-f", yamlFile}, env); code != cli.ExitOK || !strings.Contains(stdout.String(), "unchanged") {
		t.Fatalf("flows apply again: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	for _, name := range []string{"e2e_api_stream", "e2e_cli_files"} {
		d, err := c.st.GetDefinition(ctx, name)
		if err != nil || d.Origin != store.OriginSpec || d.Version != 1 {
			t.Fatalf("%s stored as %+v (%v), want a spec flow at version 1", name, d, err)
		}
		if code, body := call(t, "POST", base+"/api/v1/flows/"+name+"/activate", "", ""); code != http.StatusOK {
			t.Fatalf("activate %s: %d %s", name, code, body)
		}
	}

	// A worker SIGKILLed while it holds a batch of each flow's first run.
	first := func(flow string) store.Run {
		var r store.Run
		c.waitFor("a run of "+flow, 30*time.Second, func() bool {
			runs := c.runsOf(flow)
			if len(runs) > 0 {
				r = runs[len(runs)-1]
			}
			return len(runs) > 0
		})
		return r
	}
	rs, rf := first("e2e_api_stream"), first("e2e_cli_files")
	c.waitFor("both flows under way on the first worker", time.Minute, func() bool {
		return c.run(rs.ID).BatchesSucceeded >= 2 && c.run(rf.ID).BatchesSucceeded >= 2 &&
			(c.holdsBatch(rs.ID, w1) || c.holdsBatch(rf.ID, w1))
	})
	w1.kill(t)
	c.worker(2)
	rs, rf = c.waitDone(rs.ID, 3*time.Minute), c.waitDone(rf.ID, 3*time.Minute)
	if rs.State != store.RunSucceeded || rs.RowsRead != entries || rs.SpecVersion != 1 {
		t.Errorf("stream run %d: %s %+v v%d (%s)", rs.ID, rs.State, rs.Counters, rs.SpecVersion, rs.Error)
	}
	if rf.State != store.RunSucceeded || rf.RowsRead != items || rf.SpecVersion != 1 {
		t.Errorf("files run %d: %s %+v v%d (%s)", rf.ID, rf.State, rf.Counters, rf.SpecVersion, rf.Error)
	}
	if c.batchesWithAttempts(rs.ID, 2)+c.batchesWithAttempts(rf.ID, 2) == 0 {
		t.Logf("no batch needed a second attempt: the kill landed after the held batch's checkpoint")
	}

	var got struct{ Rows, Distinct, Lo, Hi int64 }
	if err := c.db.Raw("SELECT count(*) AS rows, count(DISTINCT n) AS distinct, min(n) AS lo, max(n) AS hi FROM e2e_stream_rows").Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.Rows != entries || got.Distinct != entries || got.Lo != 1 || got.Hi != entries {
		t.Errorf("e2e_stream_rows: %+v; want every n in 1..%d once", got, entries)
	}
	seen, _ := readJSONL(t, out, "e2e_cli_files-")
	assertEachIDOnce(t, seen, items)

	// The offset and the watermark, on the API and on the flow pages.
	if st := c.flowState("e2e_api_stream"); st.Watermark != lastID {
		t.Errorf("stream offset %q, want %s", st.Watermark, lastID)
	}
	if st := c.flowState("e2e_cli_files"); st.Watermark != fmt.Sprintf("[%d]", items) {
		t.Errorf("files watermark %q, want [%d]", st.Watermark, items)
	}
	for flow, want := range map[string]string{"e2e_api_stream": lastID, "e2e_cli_files": fmt.Sprint(items)} {
		code, body := call(t, "GET", base+"/api/v1/flows/"+flow, "", "")
		var f struct {
			Watermark string `json:"watermark"`
			Origin    string `json:"origin"`
			Version   int64  `json:"version"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &f) != nil || f.Origin != "spec" || f.Version != 1 || f.Watermark == "" {
			t.Errorf("GET flow %s: %d %s", flow, code, body)
		}
		code, body = call(t, "GET", base+"/flows/"+flow, "", "")
		if code != http.StatusOK || !strings.Contains(string(body), ">"+want+"</code>") {
			t.Errorf("flow page of %s: %d, does not show %s as its watermark", flow, code, want)
		}
	}
	// Deleting a flow while a run of it is live is refused; deactivated
	// and idle, it goes.
	if code, body := call(t, "POST", base+"/api/v1/flows/e2e_cli_files/deactivate", "", ""); code != http.StatusOK {
		t.Fatalf("deactivate: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", base+"/api/v1/flows/e2e_cli_files", "", ""); code != http.StatusNoContent {
		t.Errorf("delete an idle flow: %d %s", code, body)
	}
	if _, err := c.st.GetDefinition(ctx, "e2e_cli_files"); err == nil {
		t.Errorf("the deleted flow is still defined")
	}
}
