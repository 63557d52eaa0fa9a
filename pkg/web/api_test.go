package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
)

type apiEnv struct {
	t     *testing.T
	st    store.Store
	srv   *httptest.Server
	alice *client.Client
	bob   *client.Client
}

func newAPIEnv(t *testing.T, mutate func(*web.Options)) *apiEnv {
	t.Helper()
	return newAPIEnvOn(t, false, mutate)
}

// newAPIEnvOn is newAPIEnv on the SQL store (PostgreSQL, the database of
// the example tables) when sql is true, else on the Redis store.
func newAPIEnvOn(t *testing.T, sql bool, mutate func(*web.Options)) *apiEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenDB(ctx, testenv.PostgresURL(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	if err := examples.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := examples.Seed(ctx, db, 2500); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	var st store.Store
	if sql {
		if err := sqlstore.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		st, err = sqlstore.New(ctx, db, sqlstore.Config{})
	} else {
		st, err = redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := engine.DefaultRegistry.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	// The example definitions, and on the SQL store the flows defined as
	// specs in it (a registry of the test's own: the loader is its store's).
	reg := engine.NewRegistry()
	for _, j := range engine.DefaultRegistry.Jobs() {
		if err := reg.Register(j); err != nil {
			t.Fatal(err)
		}
	}
	if sql {
		reg.SetLoader(flows.SpecLoader(st))
	}
	opts := web.Options{
		Store: st, Registry: reg, Redis: rdb, DB: db, Events: events.New(rdb, prefix+"events"), Queue: prefix + "q",
		Auth:   web.Auth{Tokens: map[string]string{aliceToken: "alice", bobToken: "bob"}},
		Logger: zaptest.NewLogger(t),
	}
	if mutate != nil {
		mutate(&opts)
	}
	h, err := web.Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() }) // after the server's Close (cleanups run last first)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiEnv{t: t, st: st, srv: srv,
		alice: client.New(srv.URL+opts.BasePath, aliceToken), bob: client.New(srv.URL+opts.BasePath, bobToken)}
}

// raw sends a request and returns the status and decoded error body.
func (e *apiEnv) raw(method, path, token, body string) (int, api.ErrorDetail, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ae api.Error
	json.Unmarshal(b, &ae)
	return resp.StatusCode, ae.Error, resp.Header
}

// runInState creates a run (as alice) and moves it to st through the store.
func (e *apiEnv) runInState(st store.RunState) api.Run {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "add_default_role_to_users"})
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	path := map[store.RunState][]store.RunState{
		store.RunScheduled: nil,
		store.RunRunning:   {store.RunRunning},
		store.RunPaused:    {store.RunRunning, store.RunPaused},
		store.RunSucceeded: {store.RunRunning, store.RunSucceeded},
		store.RunFailed:    {store.RunRunning, store.RunFailed},
		store.RunCancelled: {store.RunCancelled},
	}[st]
	for _, to := range path {
		if _, err := e.st.TransitionRun(ctx, id, to, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	out, err := e.alice.Run(ctx, r.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// failedBatch gives a running run one failed batch and one succeeded batch.
func (e *apiEnv) failedBatch(r api.Run) {
	e.t.Helper()
	ctx := context.Background()
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	bs, err := e.st.AppendBatches(ctx, id, store.PlanStep{From: "", To: "[2]", Done: true,
		Batches: []store.KeyRange{{Lo: "", Hi: "[1]"}, {Lo: "[1]", Hi: "[2]"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, b := range bs {
		tok := fmt.Sprint("t", i)
		if _, err := e.st.ClaimBatch(ctx, id, b.Seq, store.Claim{Token: tok, Lease: time.Minute}); err != nil {
			e.t.Fatal(err)
		}
		if i == 0 {
			_, err = e.st.FailBatch(ctx, id, b.Seq, tok, store.Failure{Message: "boom <script>alert(1)</script>", Stack: "stack", Final: true})
		} else {
			_, err = e.st.CompleteBatch(ctx, id, b.Seq, tok, store.Result{RowsRead: 1, RowsWritten: 1})
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// exercised lists the OpenAPI operations the tests below call.
var exercised = map[string]bool{}

func hit(method, path string) { exercised[method+" "+path] = true }

func TestAPIRoutes(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()

	defs, err := e.alice.Definitions(ctx)
	hit("GET", "/api/v1/definitions")
	if err != nil {
		t.Fatal(err)
	}
	var role *api.Definition
	for i := range defs {
		if defs[i].Name == "add_default_role_to_users" {
			role = &defs[i]
		}
	}
	if role == nil || role.Kind != "backfill" || len(role.Params.Fields) != 1 || role.Params.Fields[0].Name != "role" ||
		len(role.Params.Fields[0].Enum) != 3 || role.Defaults.BatchSize != 1000 {
		t.Fatalf("definition add_default_role_to_users: %+v", role)
	}

	byName, err := e.alice.Definition(ctx, "add_default_role_to_users")
	hit("GET", "/api/v1/definitions/{name}")
	if err != nil || byName.Name != role.Name || !reflect.DeepEqual(byName.Defaults, role.Defaults) {
		t.Fatalf("GET the definition: %+v, %v; want what the list says", byName, err)
	}

	pv, err := e.alice.Preview(ctx, "add_default_role_to_users", json.RawMessage(`{"role":"admin"}`), 100)
	hit("GET", "/api/v1/definitions/{name}/preview")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Records != 1250 || pv.Batches != 13 || pv.Estimated {
		t.Fatalf("preview %+v, want 1250 records (users without role) in 13 batches of 100", pv)
	}

	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	created, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "add_default_role_to_users", Params: json.RawMessage(`{"role":"guest"}`),
		BatchSize: ptr(200), MaxInFlight: ptr(3), RowsPerSecond: ptr(1000), SleepMS: ptr(int64(50)), StartAt: &start,
		BatchTimeoutMS: ptr(int64(90000))})
	hit("POST", "/api/v1/runs")
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != "scheduled" || created.CreatedBy != "alice" || created.Options.BatchSize != 200 || created.Options.MaxInFlight != 3 ||
		created.Options.SleepMS != 50 || created.Options.RowsPerSecond != 1000 || created.Options.BatchTimeoutMS != 90000 || created.StartAt == nil || !created.StartAt.Equal(start) ||
		string(created.Params) != `{"role":"guest"}` {
		t.Fatalf("created run %+v", created)
	}

	got, err := e.bob.Run(ctx, created.ID)
	hit("GET", "/api/v1/runs/{id}")
	if err != nil || got.ID != created.ID || got.Progress.Total != -1 {
		t.Fatalf("get run: %+v, %v", got, err)
	}

	bobs, err := e.bob.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.bob.ListRuns(ctx, client.ListRunsOptions{Mine: true})
	hit("GET", "/api/v1/runs")
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != bobs.ID {
		t.Fatalf("bob's runs: %+v, %v", page.Items, err)
	}
	page, err = e.alice.ListRuns(ctx, client.ListRunsOptions{Status: []string{"scheduled"}, Limit: 1})
	if err != nil || len(page.Items) != 1 || page.NextCursor == "" || page.Items[0].ID != bobs.ID {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = e.alice.ListRuns(ctx, client.ListRunsOptions{Status: []string{"scheduled"}, Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != created.ID {
		t.Fatalf("second page: %+v, %v", page, err)
	}

	running := e.runInState(store.RunRunning)
	paused, err := e.alice.Pause(ctx, running.ID)
	hit("POST", "/api/v1/runs/{id}/pause")
	if err != nil || paused.Status != "paused" {
		t.Fatalf("pause: %+v, %v", paused.Status, err)
	}
	resumed, err := e.alice.Resume(ctx, running.ID)
	hit("POST", "/api/v1/runs/{id}/resume")
	if err != nil || resumed.Status != "running" {
		t.Fatalf("resume: %+v, %v", resumed.Status, err)
	}

	// Resume is for paused runs: the run scheduled for later stays
	// scheduled; it is moved with reschedule and started with start.
	_, err = e.alice.Resume(ctx, created.ID)
	if !client.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "reschedule") {
		t.Fatalf("resume of a scheduled run: %v, want 409 saying to start or reschedule it", err)
	}
	later := start.Add(time.Hour)
	moved, err := e.alice.Reschedule(ctx, created.ID, later)
	hit("POST", "/api/v1/runs/{id}/reschedule")
	if err != nil || moved.Status != "scheduled" || moved.StartAt == nil || !moved.StartAt.Equal(later) {
		t.Fatalf("reschedule: %+v, %v", moved, err)
	}
	if code, _, _ := e.raw("POST", "/api/v1/runs/"+created.ID+"/reschedule", aliceToken, "{}"); code != http.StatusUnprocessableEntity {
		t.Fatalf("reschedule without start_at: %d, want 422", code)
	}
	soon := e.runInState(store.RunScheduled)
	started, err := e.alice.Start(ctx, soon.ID)
	hit("POST", "/api/v1/runs/{id}/start")
	if err != nil || started.Status != "running" {
		t.Fatalf("start: %+v, %v", started.Status, err)
	}
	if _, err := e.alice.Start(ctx, soon.ID); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("start of a running run: %v, want 409", err)
	}
	ws, err := e.alice.Workers(ctx)
	hit("GET", "/api/v1/workers")
	if err != nil || len(ws) != 0 {
		t.Fatalf("workers: %+v, %v; want none", ws, err)
	}

	e.failedBatch(resumed)
	batches, err := e.alice.Batches(ctx, running.ID, []string{"failed"}, 0, "")
	hit("GET", "/api/v1/runs/{id}/batches")
	if err != nil || len(batches.Items) != 1 || batches.Items[0].Error == "" || batches.Items[0].TaskID != running.ID+":1" {
		t.Fatalf("failed batches: %+v, %v", batches.Items, err)
	}
	one, err := e.alice.RetryBatch(ctx, running.ID, batches.Items[0].ID)
	hit("POST", "/api/v1/runs/{id}/batches/{batch}/retry")
	if err != nil || one.Retried != 1 {
		t.Fatalf("retry batch: %+v, %v", one, err)
	}
	_, err = e.alice.RetryBatch(ctx, running.ID, batches.Items[0].ID)
	if !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("retrying a batch that is not failed: %v, want 409", err)
	}

	failedRun := e.runInState(store.RunRunning)
	e.failedBatch(failedRun)
	id, _ := strconv.ParseInt(failedRun.ID, 10, 64)
	if _, err := e.st.TransitionRun(ctx, id, store.RunFailed, &store.TransitionOptions{Error: "1 of 2 batches failed"}); err != nil {
		t.Fatal(err)
	}
	retried, err := e.alice.Retry(ctx, failedRun.ID)
	hit("POST", "/api/v1/runs/{id}/retry")
	if err != nil || retried.Retried != 1 || retried.Run.Status != "running" {
		t.Fatalf("retry run: %+v, %v", retried, err)
	}

	cancelled, err := e.alice.Cancel(ctx, created.ID)
	hit("POST", "/api/v1/runs/{id}/cancel")
	if err != nil || cancelled.Status != "cancelled" {
		t.Fatalf("cancel: %+v, %v", cancelled.Status, err)
	}
	tl, err := e.alice.Timeline(ctx, created.ID, "", 0)
	hit("GET", "/api/v1/runs/{id}/timeline")
	if err != nil || len(tl.Items) < 2 || tl.Items[0].Kind != api.EventCreated || tl.Items[len(tl.Items)-1].Kind != api.EventCancelled {
		t.Fatalf("timeline: %+v, %v; want created first and cancelled last", tl, err)
	}

	// Events: the stream sends the run, then its changes, and ends with it.
	watched := e.runInState(store.RunRunning)
	wid, _ := strconv.ParseInt(watched.ID, 10, 64)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		e.st.TransitionRun(ctx, wid, store.RunSucceeded, nil)
	}()
	var seen []string
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = e.alice.Watch(wctx, watched.ID, func(r api.Run) error { seen = append(seen, r.Status); return nil })
	hit("GET", "/api/v1/runs/{id}/events")
	if err != nil || len(seen) < 2 || seen[0] != "running" || seen[len(seen)-1] != "succeeded" {
		t.Fatalf("watch: %v, %v", seen, err)
	}

	flows, err := e.alice.Flows(ctx)
	hit("GET", "/api/v1/flows")
	if err != nil || len(flows) != 1 || flows[0].Name != "user_sync" || flows[0].Active || flows[0].Runtime != "every 30s" {
		t.Fatalf("flows: %+v, %v", flows, err)
	}
	on, err := e.alice.ActivateFlow(ctx, "user_sync")
	hit("POST", "/api/v1/flows/{name}/activate")
	if err != nil || !on.Active {
		t.Fatalf("activate: %+v, %v", on, err)
	}
	off, err := e.alice.DeactivateFlow(ctx, "user_sync")
	hit("POST", "/api/v1/flows/{name}/deactivate")
	if err != nil || off.Active {
		t.Fatalf("deactivate: %+v, %v", off, err)
	}
	trig, err := e.alice.TriggerFlow(ctx, "user_sync")
	hit("POST", "/api/v1/flows/{name}/trigger")
	if err != nil || trig.Definition != "user_sync" || trig.CreatedBy != "alice" {
		t.Fatalf("trigger: %+v, %v", trig, err)
	}
	_, err = e.alice.TriggerFlow(ctx, "user_sync")
	if !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("second trigger while the first run is scheduled: %v, want 409", err)
	}

	conns, err := e.alice.Connectors(ctx)
	hit("GET", "/api/v1/connectors")
	var sqlKind *api.Connector
	for i := range conns {
		if conns[i].Kind == "sql" {
			sqlKind = &conns[i]
		}
	}
	if err != nil || sqlKind == nil || sqlKind.Source == nil || sqlKind.Sink == nil || sqlKind.Delivery == "" {
		t.Fatalf("connectors: %+v, %v; want the sql connector with both sides and its delivery", conns, err)
	}
	var mode *api.ConnectorSetting
	for i, st := range sqlKind.Sink.Settings {
		if st.Name == "mode" {
			mode = &sqlKind.Sink.Settings[i]
		}
	}
	if mode == nil || !mode.Required || mode.Type != "string" || mode.Help == "" {
		t.Errorf("sql sink setting mode: %+v, want a required string with help", mode)
	}

	for _, p := range []string{"/healthz", "/readyz"} {
		code, _, _ := e.raw("GET", p, "", "")
		hit("GET", p)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", p, code)
		}
	}

	// Flows defined as specs need a store with them (SQL here).
	t.Run("flow specs", testFlowSpecRoutes)

	// The OpenAPI document lists exactly the routes exercised above.
	resp, err := http.Get(e.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var listed, missing []string
	for path, ops := range doc.Paths {
		for method := range ops {
			op := strings.ToUpper(method) + " " + path
			listed = append(listed, op)
			if !exercised[op] {
				missing = append(missing, op)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("OpenAPI operations no test exercised: %v", missing)
	}
	for op := range exercised {
		found := false
		for _, l := range listed {
			found = found || l == op
		}
		if !found {
			t.Errorf("exercised %s, which the OpenAPI document does not list", op)
		}
	}
}

func TestAPIBadInput(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) { o.MaxBodyBytes, o.MaxRunBodyBytes = 4096, 4096 })
	scheduled := e.runInState(store.RunScheduled)
	succeeded := e.runInState(store.RunSucceeded)
	running := e.runInState(store.RunRunning)
	tests := []struct {
		name          string
		method, path  string
		token, body   string
		status        int
		code, field   string
		messageSubstr string
	}{
		{"no token", "GET", "/api/v1/runs", "", "", 401, "unauthorized", "", "Bearer"},
		{"wrong token", "GET", "/api/v1/runs", "nope-nope-nope-nope", "", 401, "unauthorized", "", ""},
		{"malformed JSON", "POST", "/api/v1/runs", aliceToken, `{"definition":`, 400, "bad_request", "", "malformed"},
		{"not an object", "POST", "/api/v1/runs", aliceToken, `[1]`, 422, "invalid", "", ""},
		{"trailing data", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails"} {}`, 400, "bad_request", "", ""},
		{"unknown field", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","batchsize":5}`, 422, "invalid", "batchsize", ""},
		{"wrong type", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","batch_size":"many"}`, 422, "invalid", "batch_size", "batch_size must be an integer, not string"},
		{"wrong type of a list", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","health_checks":"x"}`, 422, "invalid", "health_checks", "health_checks must be a list, not string"},
		{"no definition", "POST", "/api/v1/runs", aliceToken, `{}`, 422, "invalid", "definition", ""},
		{"unknown definition", "POST", "/api/v1/runs", aliceToken, `{"definition":"drop_tables"}`, 422, "invalid", "definition", "drop_tables"},
		{"invalid param", "POST", "/api/v1/runs", aliceToken, `{"definition":"add_default_role_to_users","params":{"role":"root"}}`, 422, "invalid", "params.role", "one of"},
		{"unknown param", "POST", "/api/v1/runs", aliceToken, `{"definition":"add_default_role_to_users","params":{"rol":"admin"}}`, 422, "invalid", "params.rol", ""},
		{"bad batch size", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","batch_size":0}`, 422, "invalid", "batch_size", ""},
		{"negative sleep", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","sleep_ms":-1}`, 422, "invalid", "sleep_ms", ""},
		{"negative batch timeout", "POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","batch_timeout_ms":-5}`, 422, "invalid", "batch_timeout_ms", ""},
		{"oversized body", "POST", "/api/v1/runs", aliceToken, `{"definition":"` + strings.Repeat("x", 5000) + `"}`, 413, "too_large", "", ""},
		{"unknown run", "GET", "/api/v1/runs/999999", aliceToken, "", 404, "not_found", "", ""},
		{"non-numeric run id", "GET", "/api/v1/runs/abc", aliceToken, "", 404, "not_found", "", ""},
		{"unknown run batches", "GET", "/api/v1/runs/999999/batches", aliceToken, "", 404, "not_found", "", ""},
		{"unknown batch", "POST", "/api/v1/runs/" + running.ID + "/batches/77/retry", aliceToken, "", 404, "not_found", "", ""},
		{"pause a scheduled run", "POST", "/api/v1/runs/" + scheduled.ID + "/pause", aliceToken, "", 409, "conflict", "", "scheduled"},
		{"resume a succeeded run", "POST", "/api/v1/runs/" + succeeded.ID + "/resume", aliceToken, "", 409, "conflict", "", "succeeded"},
		{"cancel a succeeded run", "POST", "/api/v1/runs/" + succeeded.ID + "/cancel", aliceToken, "", 409, "conflict", "", ""},
		{"retry a succeeded run", "POST", "/api/v1/runs/" + succeeded.ID + "/retry", aliceToken, "", 409, "conflict", "", ""},
		{"bad status filter", "GET", "/api/v1/runs?status=exploded", aliceToken, "", 422, "invalid", "status", ""},
		{"bad limit", "GET", "/api/v1/runs?limit=5000", aliceToken, "", 422, "invalid", "limit", ""},
		{"bad cursor", "GET", "/api/v1/runs?cursor=%3Cscript%3E", aliceToken, "", 422, "invalid", "cursor", ""},
		{"unknown preview", "GET", "/api/v1/definitions/nope/preview", aliceToken, "", 404, "not_found", "", ""},
		{"invalid preview params", "GET", "/api/v1/definitions/add_default_role_to_users/preview?params=%7B%22role%22%3A1%7D", aliceToken, "", 422, "invalid", "params.role", ""},
		{"unknown flow", "POST", "/api/v1/flows/nope/activate", aliceToken, "", 404, "not_found", "", ""},
		{"unknown route", "GET", "/api/v1/nothing", aliceToken, "", 404, "not_found", "", ""},
	}
	for _, tt := range tests {
		code, ed, _ := e.raw(tt.method, tt.path, tt.token, tt.body)
		if code != tt.status || ed.Code != tt.code || ed.Field != tt.field || !strings.Contains(ed.Message, tt.messageSubstr) {
			t.Errorf("%s: %d %+v; want %d %s field %q containing %q", tt.name, code, ed, tt.status, tt.code, tt.field, tt.messageSubstr)
		}
		if strings.Contains(strings.ToLower(ed.Message), "sql") || strings.Contains(ed.Message, "goroutine") {
			t.Errorf("%s: error leaks internals: %q", tt.name, ed.Message)
		}
	}
	// Refused input changed nothing: only the three runs made above exist.
	page, err := e.alice.ListRuns(context.Background(), client.ListRunsOptions{})
	if err != nil || len(page.Items) != 3 {
		t.Fatalf("runs after bad input: %d, %v", len(page.Items), err)
	}
}

func TestAPISecurityHeadersAndBasePath(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) { o.BasePath = "/ops" })
	ctx := context.Background()
	if _, err := e.alice.Definitions(ctx); err != nil {
		t.Fatalf("API under /ops: %v", err)
	}
	code, _, h := e.raw("GET", "/ops/api/v1/runs", aliceToken, "")
	if code != 200 {
		t.Fatalf("GET /ops/api/v1/runs: %d", code)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	for _, name := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
		if h.Get(name) == "" {
			t.Errorf("missing %s", name)
		}
	}
	if code, _, _ := e.raw("GET", "/api/v1/runs", aliceToken, ""); code != 404 {
		t.Errorf("API outside the base path answered %d", code)
	}
	r, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/ops/api/v1/runs", bytes.NewReader([]byte(`{"definition":"fix_user_emails"}`)))
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/ops/api/v1/runs/") || r.ID == "" {
		t.Errorf("Location %q", loc)
	}
}

func TestAPIAuthModes(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		o.Auth.ProxyHeader = "X-Forwarded-Email"
		o.Auth.Authenticate = func(r *http.Request) (string, bool) {
			if r.Header.Get("X-App-User") == "carol" {
				return "carol@app", true
			}
			return "", false
		}
	})
	create := func(h map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/runs", strings.NewReader(`{"definition":"fix_user_emails"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r api.Run
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.CreatedBy
	}
	if code, by := create(map[string]string{"X-Forwarded-Email": "dan@example.com"}); code != 201 || by != "dan@example.com" {
		t.Errorf("proxy header: %d by %q", code, by)
	}
	if code, by := create(map[string]string{"X-App-User": "carol"}); code != 201 || by != "carol@app" {
		t.Errorf("hook: %d by %q", code, by)
	}
	// What another site can make a browser send: a form post carrying the
	// proxy's identity but no JSON content type. It must change nothing.
	if code, _ := create(map[string]string{"X-Forwarded-Email": "dan@example.com", "Content-Type": "text/plain"}); code != 403 {
		t.Errorf("cross-site form post with a proxy identity: %d, want 403", code)
	}
	if code, _ := create(nil); code != 401 {
		t.Errorf("no identity: %d", code)
	}
	if _, err := web.Handler(web.Options{Store: e.st}); err == nil || !strings.Contains(err.Error(), "no authentication configured") {
		t.Errorf("a handler without authentication must be refused unless disabled explicitly: %v", err)
	}
}

func TestParseTokens(t *testing.T) {
	got, err := web.ParseTokens(" alice:" + aliceToken + ", bob:" + bobToken + " ,")
	if err != nil || got[aliceToken] != "alice" || got[bobToken] != "bob" || len(got) != 2 {
		t.Fatalf("ParseTokens: %v, %v", got, err)
	}
	for _, bad := range []string{"alice", "alice:", ":" + aliceToken, "alice:short", "a:" + aliceToken + ",b:" + aliceToken} {
		if _, err := web.ParseTokens(bad); err == nil {
			t.Errorf("ParseTokens(%q) accepted", bad)
		} else if strings.Contains(err.Error(), aliceToken) {
			t.Errorf("ParseTokens error reveals a token: %v", err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
