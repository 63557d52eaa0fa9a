package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	_ "github.com/dripflow/dripflow/pkg/connectors/file" // the file sink of the specs below
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

// usersSpec is a flow spec from the example users table to JSONL files.
func usersSpec(name, runtime string) string {
	return `{
  "name": "` + name + `",
  "description": "active users as JSONL",
  "source": {"kind": "sql", "settings": {"table": "users", "where": "active = ?", "args": [true], "cursor": ["updated_at", "id"]}},
  "transforms": [
    {"type": "select", "fields": ["id", "email", "updated_at"]},
    {"type": "rename", "fields": {"id": "user_id"}}
  ],
  "sink": {"kind": "file", "settings": {"dir": "/tmp/dripflow-users", "format": "jsonl"}},
  "runtime": "` + runtime + `",
  "options": {"batch_size": 500}
}`
}

const usersYAML = `# the same flow, as a file for dripflow flows apply
name: users_yaml
source:
  kind: sql
  settings:
    table: users
    cursor: [updated_at, id]
transforms:
  - type: filter
    where: "id > 10"
sink:
  kind: file
  settings:
    dir: /tmp/dripflow-users
    format: jsonl
runtime: cron */5 * * * *
`

// send sends a request with a body of contentType and extra headers, and
// returns the status, the body and the headers of the answer.
func (e *apiEnv) send(method, path, token, contentType, body string, header map[string]string) (int, []byte, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func errorOf(b []byte) api.ErrorDetail {
	var ae api.Error
	json.Unmarshal(b, &ae)
	return ae.Error
}

func specOf(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("spec %s: %v", raw, err)
	}
	return m
}

// testFlowSpecRoutes drives every flow spec route as a user would: create,
// read, validate, new versions, versions, delete, on the SQL store.
func testFlowSpecRoutes(t *testing.T) {
	e := newAPIEnvOn(t, true, nil)
	ctx := context.Background()

	// Validate stores nothing.
	v, err := e.alice.ValidateFlow(ctx, json.RawMessage(usersSpec("users_jsonl", "every 30s")))
	hit("POST", "/api/v1/flows/validate")
	if err != nil || !v.Valid || v.Name != "users_jsonl" || v.Runtime != "every 30s" || v.Delivery != "idempotent" {
		t.Fatalf("validate: %+v (spec %s), %v", v, v.Spec, err)
	}
	if _, err := e.alice.Flow(ctx, "users_jsonl"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("a validated flow was stored: %v", err)
	}

	// Create: 201, version 1, inactive, Location and ETag.
	code, body, h := e.send("POST", "/api/v1/flows", aliceToken, "application/json", usersSpec("users_jsonl", "every 30s"), nil)
	hit("POST", "/api/v1/flows")
	var created api.Flow
	json.Unmarshal(body, &created)
	if code != http.StatusCreated || created.Name != "users_jsonl" || created.Origin != "spec" || created.Version != 1 || created.Active ||
		created.Runtime != "every 30s" || created.Description != "active users as JSONL" || h.Get("Location") != "/api/v1/flows/users_jsonl" || h.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %s %v", code, body, h)
	}
	if sp := specOf(t, created.Spec); sp["name"] != "users_jsonl" || sp["runtime"] != "every 30s" {
		t.Fatalf("created flow's spec: %s", created.Spec)
	}

	got, err := e.bob.Flow(ctx, "users_jsonl")
	hit("GET", "/api/v1/flows/{name}")
	if err != nil || got.Version != 1 || got.Origin != "spec" || len(got.Spec) == 0 {
		t.Fatalf("get flow: %+v, %v", got, err)
	}
	code, o, _ := e.send("GET", "/api/v1/flows/user_sync", bobToken, "", "", nil)
	var codeFlow api.Flow
	json.Unmarshal(o, &codeFlow)
	if code != 200 || codeFlow.Origin != "code" || codeFlow.Version != 0 || len(codeFlow.Spec) != 0 || len(codeFlow.Config) == 0 {
		t.Fatalf("get code flow: %d %s", code, o)
	}
	list, err := e.alice.Flows(ctx)
	origins := map[string]string{}
	for _, f := range list {
		origins[f.Name] = f.Origin + fmt.Sprint(f.Version)
	}
	if err != nil || origins["user_sync"] != "code0" || origins["users_jsonl"] != "spec1" {
		t.Fatalf("flows list: %v, %v", origins, err)
	}

	// A second create of the name, or one of a code flow's name: 409.
	if _, err := e.alice.CreateFlow(ctx, json.RawMessage(usersSpec("users_jsonl", "once"))); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("create twice: %v, want 409", err)
	}
	if _, err := e.alice.CreateFlow(ctx, json.RawMessage(usersSpec("user_sync", "once"))); !client.IsStatus(err, http.StatusConflict) ||
		!strings.Contains(err.Error(), "in code") {
		t.Fatalf("create over a code flow: %v, want 409 saying it is in code", err)
	}

	// New versions: optimistic concurrency with If-Match (the ETag) or
	// if_version; the name may be left to the path.
	v2, err := e.alice.UpdateFlow(ctx, "users_jsonl", json.RawMessage(strings.Replace(usersSpec("users_jsonl", "every 1m"), `"name": "users_jsonl",`, "", 1)), 1)
	hit("PUT", "/api/v1/flows/{name}")
	if err != nil || v2.Version != 2 || v2.Runtime != "every 1m0s" {
		t.Fatalf("update with If-Match 1: %+v, %v", v2, err)
	}
	_, err = e.alice.UpdateFlow(ctx, "users_jsonl", json.RawMessage(usersSpec("users_jsonl", "once")), 1)
	var ce *client.Error
	if !client.IsStatus(err, http.StatusConflict) || !asClientError(err, &ce) || ce.Field != "if_version" || !strings.Contains(ce.Message, "version 2") {
		t.Fatalf("update with a stale If-Match: %v, want 409 on if_version saying it is at version 2", err)
	}
	stale := strings.Replace(usersSpec("users_jsonl", "once"), "{", `{"if_version": 1,`, 1)
	if code, b, _ := e.send("PUT", "/api/v1/flows/users_jsonl", aliceToken, "application/json", stale, nil); code != 409 || errorOf(b).Field != "if_version" {
		t.Fatalf("update with a stale if_version: %d %s", code, b)
	}
	if code, b, _ := e.send("PUT", "/api/v1/flows/users_jsonl", aliceToken, "application/json", stale, map[string]string{"If-Match": `"2"`}); code != 422 || errorOf(b).Field != "if_version" {
		t.Fatalf("if_version and If-Match disagreeing: %d %s", code, b)
	}
	v3, err := e.alice.UpdateFlow(ctx, "users_jsonl", json.RawMessage(usersSpec("users_jsonl", "cron @hourly")), 0)
	if err != nil || v3.Version != 3 || v3.Runtime != "cron @hourly" {
		t.Fatalf("update without a version check: %+v, %v", v3, err)
	}
	if _, err := e.alice.UpdateFlow(ctx, "users_jsonl", json.RawMessage(usersSpec("other_name", "once")), 0); !client.IsStatus(err, 422) || !asClientError(err, &ce) || ce.Field != "name" {
		t.Fatalf("update renaming the flow: %v, want 422 on name", err)
	}
	if _, err := e.alice.UpdateFlow(ctx, "no_such_flow", json.RawMessage(usersSpec("no_such_flow", "once")), 0); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("update of an unknown flow: %v, want 404", err)
	}
	if _, err := e.alice.UpdateFlow(ctx, "user_sync", json.RawMessage(usersSpec("user_sync", "once")), 0); !client.IsStatus(err, http.StatusConflict) ||
		!strings.Contains(err.Error(), "read-only") {
		t.Fatalf("update of a code flow: %v, want 409 read-only", err)
	}

	vs, err := e.bob.FlowVersions(ctx, "users_jsonl")
	hit("GET", "/api/v1/flows/{name}/versions")
	if err != nil || len(vs) != 3 || vs[0].Version != 3 || vs[2].Version != 1 || vs[0].CreatedBy != "alice" {
		t.Fatalf("versions: %+v, %v", vs, err)
	}
	one, err := e.bob.FlowVersion(ctx, "users_jsonl", 1)
	hit("GET", "/api/v1/flows/{name}/versions/{version}")
	if err != nil || one.Version != 1 || specOf(t, one.Spec)["runtime"] != "every 30s" {
		t.Fatalf("version 1: %+v, %v", one, err)
	}
	if _, err := e.bob.FlowVersion(ctx, "users_jsonl", 9); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("version 9: %v, want 404", err)
	}
	if code, _, _ := e.send("GET", "/api/v1/flows/users_jsonl/versions/x", bobToken, "", "", nil); code != 404 {
		t.Fatalf("version x: %d, want 404", code)
	}
	if cv, err := e.bob.FlowVersions(ctx, "user_sync"); err != nil || len(cv) != 0 {
		t.Fatalf("versions of a code flow: %+v, %v; want none", cv, err)
	}
	if _, err := e.bob.FlowVersions(ctx, "no_such_flow"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("versions of an unknown flow: %v, want 404", err)
	}

	// YAML bodies.
	code, body, _ = e.send("POST", "/api/v1/flows", aliceToken, "application/yaml", usersYAML, nil)
	var fromYAML api.Flow
	json.Unmarshal(body, &fromYAML)
	if code != 201 || fromYAML.Name != "users_yaml" || fromYAML.Runtime != "cron */5 * * * *" || fromYAML.Version != 1 {
		t.Fatalf("create from YAML: %d %s", code, body)
	}
	code, body, _ = e.send("POST", "/api/v1/flows/validate", bobToken, "application/yaml; charset=utf-8",
		strings.Replace(usersYAML, "format: jsonl", "format: parquet", 1), nil)
	if code != 422 || errorOf(body).Field != "sink.format" {
		t.Fatalf("validate YAML with a bad sink format: %d %s; want 422 on sink.format", code, body)
	}

	// Delete: code flows are read-only; a live run holds the flow; the
	// versions stay as history and are never reused.
	if err := e.alice.DeleteFlow(ctx, "user_sync"); !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("delete of a code flow: %v, want 409 read-only", err)
	}
	// A run of a spec flow records the version it runs with; while it is
	// live, no other run starts and the flow cannot be deleted.
	live, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "users_jsonl"})
	if err != nil || live.Kind != "flow" || live.SpecVersion != 3 {
		t.Fatalf("run of the spec flow: %+v, %v; want a flow run of spec version 3", live, err)
	}
	if _, err := e.alice.TriggerFlow(ctx, "users_jsonl"); !asClientError(err, &ce) || ce.Status != 409 || ce.RunID != live.ID {
		t.Fatalf("trigger while run %s is live: %v, want 409 naming it", live.ID, err)
	}
	if _, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "users_jsonl"}); !asClientError(err, &ce) || ce.Status != 409 || ce.RunID != live.ID {
		t.Fatalf("second run while run %s is live: %v, want 409 naming it", live.ID, err)
	}
	err = e.alice.DeleteFlow(ctx, "users_jsonl")
	hit("DELETE", "/api/v1/flows/{name}")
	if !client.IsStatus(err, http.StatusConflict) || !asClientError(err, &ce) || ce.RunID != live.ID {
		t.Fatalf("delete while run %s is live: %v, want 409 naming the run", live.ID, err)
	}
	if _, err := e.alice.Cancel(ctx, live.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.alice.DeleteFlow(ctx, "users_jsonl"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := e.alice.Flow(ctx, "users_jsonl"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("deleted flow: %v, want 404", err)
	}
	if err := e.alice.DeleteFlow(ctx, "users_jsonl"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("delete twice: %v, want 404", err)
	}
	if vs, err := e.bob.FlowVersions(ctx, "users_jsonl"); err != nil || len(vs) != 3 {
		t.Fatalf("versions of the deleted flow: %d, %v; want the 3 kept", len(vs), err)
	}
	again, err := e.alice.CreateFlow(ctx, json.RawMessage(usersSpec("users_jsonl", "once")))
	if err != nil || again.Version != 4 {
		t.Fatalf("create again after delete: %+v, %v; want version 4 (versions are never reused)", again, err)
	}
}

func asClientError(err error, target **client.Error) bool {
	ce, ok := err.(*client.Error)
	if ok {
		*target = ce
	}
	return ok
}

// Every refused spec is a 422 naming the field (or 400/413 for a body that
// is no spec at all), and changes nothing.
func TestFlowSpecAPIBadSpecs(t *testing.T) {
	e := newAPIEnvOn(t, true, func(o *web.Options) { o.MaxBodyBytes = 8 << 10 })
	good := usersSpec("users_jsonl", "every 30s")
	with := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q is not in the spec", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		field, msg              string
	}{
		{"name not an identifier", "", with(`"name": "users_jsonl"`, `"name": "Users JSONL"`), 422, "name", "lower-case"},
		{"name with a dash", "", with(`"name": "users_jsonl"`, `"name": "users-jsonl"`), 422, "name", ""},
		{"no name", "", with(`"name": "users_jsonl",`, ``), 422, "name", ""},
		{"name of the wrong type", "", with(`"name": "users_jsonl"`, `"name": 5`), 422, "name", "string"},
		{"unknown field", "", with(`"runtime"`, `"runtme"`), 422, "runtme", "unknown field"},
		{"miscased field", "", with(`"runtime"`, `"Runtime"`), 422, "Runtime", "case-sensitive"},
		{"duplicate field", "", with(`"runtime": "every 30s"`, `"runtime": "every 30s", "runtime": "once"`), 422, "runtime", "duplicate"},
		{"unknown source kind", "", with(`"kind": "sql"`, `"kind": "kafka"`), 422, "source.kind", `unknown source connector "kafka"`},
		{"unknown sink kind", "", with(`"kind": "file"`, `"kind": "s3"`), 422, "sink.kind", `unknown sink connector "s3"`},
		{"unknown source setting", "", with(`"table": "users"`, `"tabel": "users"`), 422, "source.tabel", ""},
		{"bad sink setting", "", with(`"format": "jsonl"`, `"format": "xml"`), 422, "sink.format", ""},
		{"missing sink setting", "", with(`"dir": "/tmp/dripflow-users", `, ``), 422, "sink.dir", "required"},
		{"bad runtime", "", with(`"every 30s"`, `"every tuesday"`), 422, "runtime", "at least 1s"},
		{"bad cron", "", with(`"every 30s"`, `"cron 61 * * * *"`), 422, "runtime", ""},
		{"unknown transform", "", with(`"type": "select"`, `"type": "explode"`), 422, "transforms[0].type", `unknown transform "explode"`},
		{"bad transform setting", "", with(`{"type": "rename", "fields": {"id": "user_id"}}`, `{"type": "filter", "where": "id => 3"}`), 422, "transforms[1].where", ""},
		{"unknown transform setting", "", with(`"type": "rename", "fields"`, `"type": "rename", "feilds"`), 422, "transforms[1].feilds", ""},
		{"transform not an object", "", with(`{"type": "select", "fields": ["id", "email", "updated_at"]},`, `5,`), 422, "transforms", ""},
		{"bad option", "", with(`"batch_size": 500`, `"batch_size": 100000000`), 422, "options.batch_size", ""},
		{"bad duration", "", with(`"batch_size": 500`, `"sleep": "soon"`), 422, "options.sleep", "duration"},
		{"if_version on create", "", with(`"runtime"`, `"if_version": 3, "runtime"`), 422, "if_version", "PUT"},
		{"not an object", "", `[1, 2]`, 422, "", "JSON object"},
		{"malformed JSON", "", `{"name": `, 400, "", "malformed"},
		{"trailing data", "", good + ` {}`, 400, "", "trailing"},
		{"empty body", "", ``, 400, "", ""},
		{"oversized body", "", with(`"description": "active users as JSONL"`, `"description": "`+strings.Repeat("x", 9000)+`"`), 413, "", ""},
		{"malformed YAML", "application/yaml", "name: [a\nsource: {", 400, "", "YAML"},
		{"two YAML documents", "application/yaml", usersYAML + "---\n" + usersYAML, 422, "", "one flow"},
		{"YAML list", "application/yaml", "- a\n- b\n", 422, "", "mapping"},
		{"YAML bad field", "application/yaml", strings.Replace(usersYAML, "runtime:", "schedule:", 1), 422, "schedule", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			for _, path := range []string{"/api/v1/flows", "/api/v1/flows/validate"} {
				if tc.field == "if_version" && strings.HasSuffix(path, "validate") {
					continue
				}
				code, b, _ := e.send("POST", path, aliceToken, ct, tc.body, nil)
				ed := errorOf(b)
				if code != tc.status || ed.Field != tc.field || !strings.Contains(ed.Message, tc.msg) {
					t.Errorf("POST %s: %d %s; want %d field %q saying %q", path, code, b, tc.status, tc.field, tc.msg)
				}
				if strings.Contains(strings.ToLower(ed.Message), "sql:") || strings.Contains(ed.Message, "goroutine") {
					t.Errorf("POST %s: error leaks internals: %q", path, ed.Message)
				}
			}
		})
	}
	// Nothing was stored.
	flows, err := e.alice.Flows(context.Background())
	if err != nil || len(flows) != 1 || flows[0].Name != "user_sync" {
		t.Fatalf("flows after bad specs: %+v, %v; want only user_sync", flows, err)
	}

	// A bad new version changes nothing either.
	if _, err := e.alice.CreateFlow(context.Background(), json.RawMessage(good)); err != nil {
		t.Fatal(err)
	}
	code, b, _ := e.send("PUT", "/api/v1/flows/users_jsonl", aliceToken, "application/json", with(`"kind": "file"`, `"kind": "s3"`), nil)
	if code != 422 || errorOf(b).Field != "sink.kind" {
		t.Fatalf("bad new version: %d %s", code, b)
	}
	code, b, _ = e.send("PUT", "/api/v1/flows/users_jsonl", aliceToken, "application/json", good, map[string]string{"If-Match": "soon"})
	if code != 422 || errorOf(b).Field != "If-Match" {
		t.Fatalf("bad If-Match: %d %s", code, b)
	}
	if f, err := e.alice.Flow(context.Background(), "users_jsonl"); err != nil || f.Version != 1 {
		t.Fatalf("flow after bad new versions: %+v, %v; want version 1", f, err)
	}
}

// Creating, changing and deleting flows needs the admin role (as
// activating them); any role may validate and read.
func TestFlowSpecAPIRoles(t *testing.T) {
	e := newAPIEnvOn(t, true, withRoles)
	spec := usersSpec("users_jsonl", "once")
	for _, tc := range []struct {
		who, token, method, path, body string
		want                           int
	}{
		{"viewer", veraToken, "POST", "/api/v1/flows/validate", spec, 200},
		{"viewer", veraToken, "POST", "/api/v1/flows", spec, 403},
		{"operator", ottoToken, "POST", "/api/v1/flows/validate", spec, 200},
		{"operator", ottoToken, "POST", "/api/v1/flows", spec, 403},
		{"admin", adaToken, "POST", "/api/v1/flows", spec, 201},
		{"viewer", veraToken, "GET", "/api/v1/flows/users_jsonl", "", 200},
		{"viewer", veraToken, "GET", "/api/v1/flows/users_jsonl/versions", "", 200},
		{"viewer", veraToken, "PUT", "/api/v1/flows/users_jsonl", spec, 403},
		{"operator", ottoToken, "PUT", "/api/v1/flows/users_jsonl", spec, 403},
		{"viewer", veraToken, "DELETE", "/api/v1/flows/users_jsonl", "", 403},
		{"operator", ottoToken, "DELETE", "/api/v1/flows/users_jsonl", "", 403},
		{"admin", adaToken, "PUT", "/api/v1/flows/users_jsonl", spec, 200},
		{"admin", adaToken, "DELETE", "/api/v1/flows/users_jsonl", "", 204},
	} {
		code, b, _ := e.send(tc.method, tc.path, tc.token, "application/json", tc.body, nil)
		if code != tc.want {
			t.Errorf("%s %s %s: %d %s; want %d", tc.who, tc.method, tc.path, code, b, tc.want)
		}
		if code == 403 && !strings.Contains(errorOf(b).Message, "admin") {
			t.Errorf("%s %s %s: 403 should say the admin role is needed: %s", tc.who, tc.method, tc.path, b)
		}
	}
	if code, _, _ := e.send("POST", "/api/v1/flows", "", "application/json", spec, nil); code != 401 {
		t.Errorf("create without a token: %d, want 401", code)
	}
}

// Two runs of one flow requested at once: the store lets one start and
// refuses the other with 409 naming the live run, whichever way they come.
func TestFlowOneRunAtATime(t *testing.T) {
	e := newAPIEnvOn(t, true, nil)
	if _, err := e.alice.CreateFlow(context.Background(), json.RawMessage(usersSpec("users_jsonl", "once"))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"user_sync", "users_jsonl"} {
		t.Run(name, func(t *testing.T) { testOneRunAtATime(t, e, name) })
	}
}

func testOneRunAtATime(t *testing.T, e *apiEnv, flow string) {
	const n = 4
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		runIDs   []string
		busy     []string
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not e.send: its t.Fatal must not be called off the test's
			// goroutine.
			req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/runs", strings.NewReader(`{"definition":"`+flow+`"}`))
			req.Header.Set("Authorization", "Bearer "+aliceToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			code := resp.StatusCode
			mu.Lock()
			defer mu.Unlock()
			statuses[code]++
			if code == 201 {
				var r api.Run
				json.Unmarshal(b, &r)
				runIDs = append(runIDs, r.ID)
			} else {
				busy = append(busy, errorOf(b).RunID)
			}
		}()
	}
	wg.Wait()
	if statuses[201] != 1 || statuses[409] != n-1 {
		t.Fatalf("%d concurrent POST /api/v1/runs of one flow: %v; want one 201 and %d 409", n, statuses, n-1)
	}
	for _, id := range busy {
		if id != runIDs[0] {
			t.Errorf("409 names run %q, want the live run %s", id, runIDs[0])
		}
	}
	// Trigger says the same.
	_, err := e.alice.TriggerFlow(context.Background(), flow)
	var ce *client.Error
	if !client.IsStatus(err, http.StatusConflict) || !asClientError(err, &ce) || ce.RunID != runIDs[0] {
		t.Fatalf("trigger while run %s is live: %v", runIDs[0], err)
	}
	// Once the run ends, the flow can run again.
	id, _ := strconv.ParseInt(runIDs[0], 10, 64)
	if _, err := e.st.TransitionRun(context.Background(), id, store.RunCancelled, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.alice.TriggerFlow(context.Background(), flow); err != nil {
		t.Fatalf("trigger after the run ended: %v", err)
	}
}
