package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/web"
)

const (
	uiAliceToken = "ui-alice-token-0123456789"
	uiBobToken   = "ui-bob-token-0123456789ab"
)

// uiItem is the table the UI tests' backfill touches.
type uiItem struct {
	ID      int64 `gorm:"primaryKey;autoIncrement:false"`
	Touched int   `gorm:"not null;default:0"`
	Broken  bool  `gorm:"not null;default:false"`
	Note    string
}

func (uiItem) TableName() string { return "ui_items" }

// uiCopy is the UI tests' flow's sink row.
type uiCopy struct {
	ItemID int64 `gorm:"primaryKey;autoIncrement:false"`
	Note   string
}

func (uiCopy) TableName() string { return "ui_copies" }

// uiTouchParams cover every kind of form input: a required free text, an
// enum, a checkbox, a number and a time.
type uiTouchParams struct {
	Note          string    `json:"note" required:"true" help:"written to every item"`
	Mode          string    `json:"mode" enum:"fast,slow" default:"fast" help:"slow sleeps a while per batch"`
	IncludeBroken bool      `json:"include_broken" help:"also process broken items (their batches fail)"`
	SleepMS       int       `json:"sleep_ms" default:"0" help:"extra sleep per batch"`
	Since         time.Time `json:"since" help:"only for show"`
}

// uiRegistry holds the UI tests' definitions: ui_touch, a backfill whose
// batches fail on broken items until the data is fixed, and ui_copy, a
// flow.
func uiRegistry(t testing.TB) *engine.Registry {
	t.Helper()
	reg := engine.NewRegistry()
	touch, err := backfills.New(backfills.Definition[uiItem, uiTouchParams]{
		Name:        "ui_touch",
		Description: "Touch every item and write the note; fails on broken items.",
		Scope: func(db *gorm.DB, p uiTouchParams) *gorm.DB {
			if !p.IncludeBroken {
				return db.Where("broken = ?", false)
			}
			return db
		},
		ProcessBatch: func(ctx context.Context, b *backfills.Batch[uiItem, uiTouchParams]) error {
			for _, it := range b.Records {
				if it.Broken {
					return fmt.Errorf("item %d is broken: <script>alert('batch')</script>", it.ID)
				}
			}
			sleep := time.Duration(b.Params.SleepMS) * time.Millisecond
			if b.Params.Mode == "slow" {
				sleep += 250 * time.Millisecond
			}
			if sleep > 0 {
				select {
				case <-time.After(sleep):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return b.DB.Model(&uiItem{}).Where("id IN ?", b.Keys()).
				Updates(map[string]any{"touched": gorm.Expr("touched + 1"), "note": b.Params.Note}).Error
		},
		Options: backfills.Options{BatchSize: 10, MaxInFlight: 2, MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	copyFlow, err := flows.New(flows.Flow{
		Name:        "ui_copy",
		Description: "Copy items' notes to ui_copies.",
		Source:      &sqlconn.Source{Table: "ui_items", Columns: []string{"id", "note"}},
		Transforms: []flows.Transform{flows.Map("to_copy", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"item_id": r["id"], "note": r["note"]}, nil
		})},
		Sink:    &sqlconn.Sink{Table: "ui_copies", Mode: sqlconn.Upsert, Key: []string{"item_id"}},
		Runtime: flows.Heartbeat{Interval: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []engine.Job{touch, copyFlow} {
		if err := reg.Register(j); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// uiEnv is a web handler on an httptest server with a PostgreSQL app
// database of `items` ui_items and a Redis store of its own.
type uiEnv struct {
	t      *testing.T
	db     *gorm.DB
	rdb    *redis.Client
	prefix string
	st     store.Store
	bus    *events.Bus
	reg    *engine.Registry
	opts   web.Options
	srv    *httptest.Server
}

func newUIEnv(t *testing.T, items int, mutate func(*web.Options)) *uiEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenDB(ctx, testenv.PostgresURL(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	if err := db.AutoMigrate(&uiItem{}, &uiCopy{}); err != nil {
		t.Fatal(err)
	}
	for lo := 1; lo <= items; lo += 500 {
		var batch []uiItem
		for id := lo; id <= items && id < lo+500; id++ {
			batch = append(batch, uiItem{ID: int64(id)})
		}
		if err := db.Create(&batch).Error; err != nil {
			t.Fatal(err)
		}
	}
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	reg := uiRegistry(t)
	if err := reg.Sync(ctx, st); err != nil {
		t.Fatal(err)
	}
	bus := events.New(rdb, prefix+"events")
	opts := web.Options{
		Store: st, Registry: reg, Redis: rdb, DB: db, Events: bus, Queue: prefix + "q",
		RedisURL: testenv.RedisURL(t),
		Auth: web.Auth{Tokens: map[string]string{uiAliceToken: "alice", uiBobToken: "bob"},
			InsecureCookies: true},
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
	return &uiEnv{t: t, db: db, rdb: rdb, prefix: prefix, st: st, bus: bus, reg: reg, opts: opts, srv: srv}
}

// uiClient is a browser without JavaScript: it keeps cookies (Secure ones
// too, as the test server is plain HTTP) and does not follow redirects.
type uiClient struct {
	e       *uiEnv
	cookies map[string]*http.Cookie
	header  http.Header
}

type uiResp struct {
	code   int
	body   string
	header http.Header
	set    map[string]*http.Cookie
}

func (r uiResp) location() string { return r.header.Get("Location") }

func (e *uiEnv) client() *uiClient {
	return &uiClient{e: e, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

func (c *uiClient) do(method, path string, form url.Values) uiResp {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for _, ck := range c.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := uiResp{code: resp.StatusCode, body: string(b), header: resp.Header, set: map[string]*http.Cookie{}}
	for _, ck := range resp.Cookies() {
		out.set[ck.Name] = ck
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return out
}

func (c *uiClient) get(path string) uiResp { return c.do("GET", path, nil) }

// post submits a form, adding the CSRF token of the page at from.
func (c *uiClient) post(from, path string, form url.Values) uiResp {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if from != "" {
		form.Set("csrf", csrfOf(c.e.t, c.get(from).body))
	}
	return c.do("POST", path, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return html.UnescapeString(m[1])
}

// login logs in through the login page.
func (c *uiClient) login(token string) {
	c.e.t.Helper()
	base := c.e.opts.BasePath
	r := c.post(base+"/login", base+"/login", url.Values{"token": {token}, "next": {"/runs"}})
	if r.code != http.StatusSeeOther || r.location() != base+"/runs" {
		c.e.t.Fatalf("login: %d to %q\n%s", r.code, r.location(), r.body)
	}
}

func (e *uiEnv) createRun(who string, p string, mutate func(*store.NewRun)) store.Run {
	e.t.Helper()
	n := store.NewRun{Definition: "ui_touch", Kind: store.KindBackfill, Params: json.RawMessage(p), CreatedBy: who,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 2}}
	if mutate != nil {
		mutate(&n)
	}
	r, err := e.st.CreateRun(context.Background(), n)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// runWithBatches moves a run to running with one failed and one succeeded
// batch, the failure carrying message and stack.
func (e *uiEnv) runWithBatches(r store.Run, message, stack string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		e.t.Fatal(err)
	}
	bs, err := e.st.AppendBatches(ctx, r.ID, store.PlanStep{From: "", To: "[20]", Done: true,
		Batches: []store.KeyRange{{Lo: "", Hi: "[10]"}, {Lo: "[10]", Hi: "[20]"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, b := range bs {
		tok := fmt.Sprint("tok", i)
		if _, err := e.st.ClaimBatch(ctx, r.ID, b.Seq, store.Claim{Token: tok, Lease: time.Minute}); err != nil {
			e.t.Fatal(err)
		}
		if i == 0 {
			_, err = e.st.FailBatch(ctx, r.ID, b.Seq, tok, store.Failure{Message: message, Stack: stack, Final: true})
		} else {
			_, err = e.st.CompleteBatch(ctx, r.ID, b.Seq, tok, store.Result{RowsRead: 10, RowsWritten: 10, Duration: 1500 * time.Millisecond})
		}
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *uiEnv) run(id int64) store.Run {
	e.t.Helper()
	r, err := e.st.GetRun(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func TestUILoginLogout(t *testing.T) {
	e := newUIEnv(t, 0, func(o *web.Options) { o.Auth.InsecureCookies = false })
	c := e.client()

	r := c.get("/runs?status=failed")
	if r.code != http.StatusSeeOther || r.location() != "/login?next="+url.QueryEscape("/runs?status=failed") {
		t.Fatalf("unauthenticated page: %d to %q", r.code, r.location())
	}
	if r := c.get("/monitoring/"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login?next=") {
		t.Fatalf("unauthenticated /monitoring/: %d to %q", r.code, r.location())
	}
	page := c.get("/login?next=" + url.QueryEscape("/runs?status=failed"))
	if page.code != 200 || !strings.Contains(page.body, `name="token"`) || !strings.Contains(page.body, `value="/runs?status=failed"`) {
		t.Fatalf("login page: %d\n%s", page.code, page.body)
	}
	csrf := csrfOf(t, page.body)

	// A wrong token or a missing CSRF token log nobody in.
	r = c.do("POST", "/login", url.Values{"csrf": {csrf}, "token": {"not-a-token-at-all"}, "next": {"/runs"}})
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not valid") || r.set["dripflow_session"] != nil {
		t.Fatalf("wrong token: %d, cookies %v", r.code, r.set)
	}
	r = c.do("POST", "/login", url.Values{"token": {uiAliceToken}, "next": {"/runs"}})
	if r.code != http.StatusForbidden || r.set["dripflow_session"] != nil {
		t.Fatalf("login without CSRF token: %d, cookies %v", r.code, r.set)
	}

	r = c.do("POST", "/login", url.Values{"csrf": {csrf}, "token": {" " + uiAliceToken + " "}, "next": {"/runs?status=failed"}})
	if r.code != http.StatusSeeOther || r.location() != "/runs?status=failed" {
		t.Fatalf("login: %d to %q\n%s", r.code, r.location(), r.body)
	}
	sess := r.set["dripflow_session"]
	if sess == nil || !sess.HttpOnly || !sess.Secure || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.MaxAge <= 0 {
		t.Fatalf("session cookie %+v", sess)
	}
	runs := c.get("/runs")
	if runs.code != 200 || !strings.Contains(runs.body, `class="identity"`) || !strings.Contains(runs.body, ">alice<") {
		t.Fatalf("runs page after login: %d\n%s", runs.code, runs.body)
	}
	// Logged in, the login page sends people on.
	if r := c.get("/login?next=/flows"); r.code != http.StatusSeeOther || r.location() != "/flows" {
		t.Fatalf("login page when logged in: %d to %q", r.code, r.location())
	}
	// The session works for the API's GETs, as app.js's EventSource needs.
	if r := c.get("/api/v1/runs"); r.code != 200 {
		t.Fatalf("API with the session cookie: %d", r.code)
	}

	if r := c.do("POST", "/logout", url.Values{}); r.code != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", r.code)
	}
	r = c.do("POST", "/logout", url.Values{"csrf": {csrfOf(t, runs.body)}})
	if r.code != http.StatusSeeOther || r.location() != "/login" {
		t.Fatalf("logout: %d to %q", r.code, r.location())
	}
	if ck := r.set["dripflow_session"]; ck == nil || ck.MaxAge >= 0 {
		t.Fatalf("logout did not drop the session cookie: %+v", ck)
	}
	if r := c.get("/login"); !strings.Contains(r.body, "You are logged out.") {
		t.Errorf("no flash after logout:\n%s", r.body)
	}
	if r := c.get("/runs"); r.code != http.StatusSeeOther {
		t.Fatalf("runs after logout: %d", r.code)
	}
}

func TestUILoginNextIsLocal(t *testing.T) {
	for _, base := range []string{"", "/ops"} {
		t.Run("base="+base, func(t *testing.T) {
			e := newUIEnv(t, 0, func(o *web.Options) { o.BasePath = base })
			for next, want := range map[string]string{
				"/runs/7?batches=failed":  "/runs/7?batches=failed",
				"/flows":                  "/flows",
				"":                        "/",
				"runs":                    "/",
				"//evil.example":          "/",
				"///evil.example":         "/",
				"https://evil.example/":   "/",
				"/\\evil.example":         "/",
				"/\t/evil.example":        "/",
				"/\n/evil.example":        "/",
				"javascript:alert(1)":     "/",
				"/login":                  "/",
				"/%2F%2Fevil.example":     "/%2F%2Fevil.example",
				"http:/evil.example":      "/",
				"/ok?next=//evil.example": "/ok?next=//evil.example",
			} {
				c := e.client()
				r := c.post(base+"/login", base+"/login", url.Values{"token": {uiAliceToken}, "next": {next}})
				if r.code != http.StatusSeeOther || r.location() != base+want {
					t.Errorf("next %q: %d to %q, want %q", next, r.code, r.location(), base+want)
				}
			}
		})
	}
}

func TestUICSRF(t *testing.T) {
	e := newUIEnv(t, 30, nil)
	c := e.client()
	c.login(uiAliceToken)
	run := e.createRun("alice", `{"note":"x"}`, nil)
	if _, err := e.st.TransitionRun(context.Background(), run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{}},
		{"wrong token", url.Values{"csrf": {"AAAA"}}},
		{"empty token", url.Values{"csrf": {""}}},
	} {
		for _, path := range []string{runPath + "/pause", runPath + "/cancel", "/definitions/ui_touch/runs", "/flows/ui_copy/activate", "/logout"} {
			form := url.Values{"note": {"y"}}
			for k, v := range tc.form {
				form[k] = v
			}
			if r := c.do("POST", path, form); r.code != http.StatusForbidden || !strings.Contains(r.body, "security token") {
				t.Errorf("%s: POST %s answered %d", tc.name, path, r.code)
			}
		}
	}
	if got := e.run(run.ID).State; got != store.RunRunning {
		t.Fatalf("a form without CSRF token changed the run to %s", got)
	}
	if pg, _ := e.st.ListRuns(context.Background(), store.RunFilter{}); len(pg.Items) != 1 {
		t.Fatalf("a form without CSRF token created runs: %d", len(pg.Items))
	}
	if fs, _ := e.st.GetFlow(context.Background(), "ui_copy"); fs.Active {
		t.Fatal("a form without CSRF token activated a flow")
	}

	// Another person's token does not work either.
	bob := e.client()
	bob.login(uiBobToken)
	if r := c.do("POST", runPath+"/pause", url.Values{"csrf": {csrfOf(t, bob.get("/runs").body)}}); r.code != http.StatusForbidden {
		t.Errorf("alice's form with bob's CSRF token: %d", r.code)
	}
	// The page's own token works: post, redirect, flash.
	r := c.post(runPath, runPath+"/pause", nil)
	if r.code != http.StatusSeeOther || r.location() != runPath {
		t.Fatalf("pause: %d to %q\n%s", r.code, r.location(), r.body)
	}
	if got := e.run(run.ID).State; got != store.RunPaused {
		t.Fatalf("run is %s after pause", got)
	}
	if page := c.get(runPath); !strings.Contains(page.body, "paused: no new batch starts") {
		t.Errorf("no flash after pause:\n%s", page.body)
	}

	// Proxy-header identities get tokens of their own.
	p := newUIEnv(t, 0, func(o *web.Options) { o.Auth.ProxyHeader = "X-Forwarded-Email" })
	dan, eve := p.client(), p.client()
	dan.header.Set("X-Forwarded-Email", "dan@example.com")
	eve.header.Set("X-Forwarded-Email", "eve@example.com")
	page := dan.get("/flows")
	if page.code != 200 || strings.Contains(page.body, `action="/logout"`) {
		t.Fatalf("proxy identity: %d, logout offered: %v", page.code, strings.Contains(page.body, `action="/logout"`))
	}
	if r := eve.do("POST", "/flows/ui_copy/activate", url.Values{"csrf": {csrfOf(t, page.body)}}); r.code != http.StatusForbidden {
		t.Errorf("eve with dan's CSRF token: %d", r.code)
	}
	if r := dan.post("/flows", "/flows/ui_copy/activate", nil); r.code != http.StatusSeeOther {
		t.Errorf("dan activating a flow: %d\n%s", r.code, r.body)
	}
}

func TestUIEscaping(t *testing.T) {
	e := newUIEnv(t, 30, nil)
	c := e.client()
	c.login(uiAliceToken)
	const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	p, _ := json.Marshal(map[string]string{"note": evil + `"'&`})
	run := e.createRun(`mallory<script>`, string(p), nil)
	e.runWithBatches(run, "batch failed: "+evil, "goroutine 1 [running]:\n"+evil)
	if _, err := e.st.TransitionRun(context.Background(), run.ID, store.RunFailed, &store.TransitionOptions{Error: "run error " + evil}); err != nil {
		t.Fatal(err)
	}
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	pages := map[string]string{
		"run":    runPath,
		"failed": runPath + "?batches=failed",
		"runs":   "/runs",
		"search": "/runs?q=" + url.QueryEscape(evil),
		"mine":   "/runs?mine=1&q=mallory",
		"login":  "/login?next=" + url.QueryEscape(`/"><script>alert(1)</script>`),
		"404":    "/nothing/" + url.PathEscape(evil),
	}
	for name, path := range pages {
		r := c.get(path)
		if r.code >= 500 {
			t.Errorf("%s: %d", name, r.code)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", `"x")</script>`} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s page contains unescaped %q", name, bad)
			}
		}
	}
	page := c.get(runPath).body
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", // params, batch error, stack, run error
		"mallory&lt;script&gt;",                           // who started it
		"batch failed: &lt;script&gt;",
		"goroutine 1 [running]:",
		"run error &lt;script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	// A search shows the term escaped and finds the run by its params.
	search := c.get("/runs?q=" + url.QueryEscape(`<script>alert("x")`)).body
	if !strings.Contains(search, fmt.Sprintf(`href="/runs/%d"`, run.ID)) {
		t.Errorf("search by params did not find run %d", run.ID)
	}
	// A flash message is escaped too: its text comes from errors.
	r := c.post(runPath, runPath+"/pause", nil)
	if r.code != http.StatusSeeOther {
		t.Fatalf("pause of a failed run: %d", r.code)
	}
	if page := c.get(runPath).body; !strings.Contains(page, "cannot go from failed to paused") || !strings.Contains(page, `class="flash flash-error"`) {
		t.Errorf("no 409 flash:\n%s", page)
	}
}

// pageURLs lists every link, source and form target in a page.
var attrURLRE = regexp.MustCompile(`\s(href|src|action|formaction|data-events|data-chart|data-preview-url)="([^"]*)"`)

func TestUIPagesUnderBasePathWithoutInlineCode(t *testing.T) {
	e := newUIEnv(t, 40, func(o *web.Options) { o.BasePath = "/ops" })
	c := e.client()
	if r := c.get("/ops/"); r.code != http.StatusSeeOther || r.location() != "/ops/login" {
		t.Fatalf("GET /ops/ logged out: %d to %q", r.code, r.location())
	}
	if r := c.get("/runs"); r.code != http.StatusNotFound {
		t.Fatalf("UI outside the base path: %d", r.code)
	}
	login := c.get("/ops/login")
	c.login(uiAliceToken)
	if ck := c.cookies["dripflow_session"]; ck == nil || ck.Path != "/ops/" {
		t.Fatalf("session cookie path: %+v", ck)
	}
	if r := c.get("/ops/"); r.code != http.StatusFound || r.location() != "/ops/runs" {
		t.Fatalf("GET /ops/: %d to %q", r.code, r.location())
	}
	run := e.createRun("alice", `{"note":"n"}`, nil)
	e.runWithBatches(run, "boom", "stack")
	if r := c.post("/ops/flows", "/ops/flows/ui_copy/activate", nil); r.code != http.StatusSeeOther || r.location() != "/ops/flows" {
		t.Fatalf("activate under /ops: %d to %q", r.code, r.location())
	}
	paths := []string{
		"/ops/runs", "/ops/runs?status=running&mine=1&q=n", fmt.Sprintf("/ops/runs/%d", run.ID),
		fmt.Sprintf("/ops/runs/%d?batches=failed", run.ID), "/ops/definitions", "/ops/definitions/ui_touch",
		"/ops/definitions/ui_copy", "/ops/flows", "/ops/flows/ui_copy", "/ops/no/such/page", "/ops/runs/999999",
	}
	bodies := map[string]string{"/ops/login": login.body}
	for _, p := range paths {
		r := c.get(p)
		want := 200
		if strings.Contains(p, "no/such") || strings.Contains(p, "999999") {
			want = 404
		}
		if r.code != want {
			t.Errorf("GET %s: %d, want %d", p, r.code, want)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
		bodies[p] = r.body
	}
	// Previews and a form with an error are pages too.
	form := url.Values{"p.note": {""}, "p.mode": {"slow"}, "batch_size": {"7"}}
	pv := c.post("/ops/definitions/ui_touch", "/ops/definitions/ui_touch/preview", url.Values{"p.note": {"n"}, "batch_size": {"7"}})
	bodies["preview"] = pv.body
	bad := c.post("/ops/definitions/ui_touch", "/ops/definitions/ui_touch/runs", form)
	bodies["422"] = bad.body
	if bad.code != http.StatusUnprocessableEntity || !strings.Contains(bad.body, "invalid param note: is required") {
		t.Errorf("form without a required param: %d\n%s", bad.code, bad.body)
	}

	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>`),  // any script tag…
		regexp.MustCompile(`(?i)<style`),              // style elements
		regexp.MustCompile(`(?i)\sstyle\s*=`),         // style attributes
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),      // event handler attributes
		regexp.MustCompile(`(?i)javascript:`),         // script URLs
		regexp.MustCompile(`(?i)https?://[a-z0-9.-]`), // anything from another host (CDNs)
	}
	scriptWithSrc := regexp.MustCompile(`(?i)<script src="[^"]+" defer></script>`)
	for p, body := range bodies {
		for _, re := range inline {
			stripped := scriptWithSrc.ReplaceAllString(body, "")
			if m := re.FindString(stripped); m != "" {
				t.Errorf("%s: inline code or remote resource %q", p, m)
			}
		}
		if !scriptWithSrc.MatchString(body) {
			t.Errorf("%s: no app.js", p)
		}
		for _, m := range attrURLRE.FindAllStringSubmatch(body, -1) {
			if u := html.UnescapeString(m[2]); !strings.HasPrefix(u, "/ops/") && !strings.HasPrefix(u, "#") {
				t.Errorf("%s: %s=%q is not under /ops", p, m[1], u)
			}
		}
	}
	// Static files are served under the base path, without login, with
	// their types.
	anon := e.client()
	for name, ctype := range map[string]string{"app.css": "text/css", "app.js": "text/javascript", "favicon.svg": "image/svg+xml"} {
		m := regexp.MustCompile(`/ops/static/` + regexp.QuoteMeta(name) + `\?v=[0-9a-f]+`).FindString(login.body)
		if m == "" {
			t.Fatalf("login page does not link %s", name)
		}
		r := anon.get(m)
		if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s: %d %q %q", m, r.code, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
		}
	}
	if r := anon.get("/ops/static/"); r.code != 404 {
		t.Errorf("static directory listing: %d", r.code)
	}
	// asynqmon is mounted under the base path too.
	if r := c.get("/ops/monitoring/"); r.code != 200 || !strings.Contains(r.body, "/ops/monitoring") {
		t.Errorf("GET /ops/monitoring/: %d", r.code)
	}
	if page := bodies[fmt.Sprintf("/ops/runs/%d", run.ID)]; !strings.Contains(page, fmt.Sprintf(`href="/ops/monitoring/queues/%s/tasks/%d:1"`, url.PathEscape(e.opts.Queue), run.ID)) {
		t.Errorf("run page has no asynqmon link for batch 1:\n%s", page)
	}
}

func TestUIStartRunFromForm(t *testing.T) {
	e := newUIEnv(t, 95, nil)
	if err := e.db.Model(&uiItem{}).Where("id > 90").Update("broken", true).Error; err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login(uiAliceToken)
	page := c.get("/definitions/ui_touch")
	for _, want := range []string{
		`name="p.note"`, `required`, // required text
		`<select id="p-mode" name="p.mode"`, `<option value="slow">slow</option>`, `<option value="fast" selected>fast</option>`, // enum with default
		`type="checkbox" name="p.include_broken"`,                  // boolean
		`name="p.sleep_ms" type="number" value="0" step="1"`,       // integer with default
		`name="p.since" type="datetime-local"`,                     // time
		`name="start_at"`, `name="tz" value="UTC"`, `data-auto-tz`, // schedule for later
		`placeholder="10"`,                                           // default batch size
		`formaction="/definitions/ui_touch/preview"`, `data-preview`, // count preview
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("definition page lacks %q", want)
		}
	}

	// Preview: JSON for app.js, a page without JavaScript.
	csrf := csrfOf(t, page.body)
	req, _ := http.NewRequest("POST", e.srv.URL+"/definitions/ui_touch/preview", strings.NewReader(url.Values{
		"csrf": {csrf}, "p.note": {"hi"}, "batch_size": {"20"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.AddCookie(&http.Cookie{Name: "dripflow_session", Value: c.cookies["dripflow_session"].Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pv struct{ Records, Batches, BatchSize int64 }
	json.NewDecoder(resp.Body).Decode(&pv)
	resp.Body.Close()
	if resp.StatusCode != 200 || pv.Records != 90 || pv.Batches != 5 {
		t.Fatalf("JSON preview: %d %+v", resp.StatusCode, pv)
	}
	r := c.post("/definitions/ui_touch", "/definitions/ui_touch/preview", url.Values{"p.note": {"typed note"}, "p.include_broken": {"true"}, "batch_size": {"10"}})
	if r.code != 200 || !strings.Contains(r.body, "<strong>95</strong> records in <strong>10</strong> batches of 10") || !strings.Contains(r.body, `value="typed note"`) {
		t.Fatalf("preview page: %d\n%s", r.code, r.body)
	}

	// A bad value comes back with the error and what was typed.
	r = c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{"p.note": {"keep me"}, "p.sleep_ms": {"lots"}, "max_in_flight": {"3"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "invalid param sleep_ms") || !strings.Contains(r.body, `value="keep me"`) ||
		!strings.Contains(r.body, `value="lots"`) || !strings.Contains(r.body, `value="3"`) || !strings.Contains(r.body, `class="field invalid"`) {
		t.Fatalf("bad form: %d\n%s", r.code, r.body)
	}
	r = c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{"p.note": {"n"}, "batch_size": {"0"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "batch_size") || !strings.Contains(r.body, `<details class="options" open>`) {
		t.Fatalf("bad batch size: %d\n%s", r.code, r.body)
	}
	r = c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{"p.note": {"n"}, "when": {"later"}, "start_at": {"2030-01-02T10:00"}, "tz": {"Mars/Olympus"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "unknown time zone") {
		t.Fatalf("bad zone: %d\n%s", r.code, r.body)
	}

	// Start now, with every kind of param and options.
	r = c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{
		"p.note": {" spaced "}, "p.mode": {"slow"}, "p.include_broken": {"true"}, "p.sleep_ms": {"5"},
		"p.since": {"2024-03-01T12:30"}, "tz": {"Europe/Paris"}, "when": {"now"},
		"batch_size": {"25"}, "max_in_flight": {"3"}, "max_attempts": {"2"}, "sleep_ms": {"40"}, "rows_per_second": {"1000"}, "error_budget": {"4"}, "batch_timeout_ms": {"90000"},
	})
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/runs/") {
		t.Fatalf("start run: %d to %q\n%s", r.code, r.location(), r.body)
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.location(), "/runs/"), 10, 64)
	run := e.run(id)
	var got map[string]any
	json.Unmarshal(run.Params, &got)
	want := map[string]any{"note": " spaced ", "mode": "slow", "include_broken": true, "sleep_ms": float64(5), "since": "2024-03-01T11:30:00Z"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("param %s = %v, want %v (all: %s)", k, got[k], v, run.Params)
		}
	}
	if o := run.Options; run.CreatedBy != "alice" || o.BatchSize != 25 || o.MaxInFlight != 3 || o.MaxAttempts != 2 || o.Sleep != 40*time.Millisecond || o.RowsPerSecond != 1000 || o.ErrorBudget != 4 || o.BatchTimeout != 90*time.Second || run.StartAt != nil {
		t.Errorf("run %+v", run)
	}
	if page := c.get(r.location()); !strings.Contains(page.body, fmt.Sprintf("Run %d of ui_touch created.", id)) || !strings.Contains(page.body, `data-field="created-by">alice<`) {
		t.Errorf("run page after start:\n%s", page.body)
	}

	// An unchecked box is false, even when... the default is false anyway;
	// schedule for later in New York time.
	r = c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{
		"p.note": {"later"}, "when": {"later"}, "start_at": {"2030-07-04T09:15"}, "tz": {"America/New_York"},
	})
	if r.code != http.StatusSeeOther {
		t.Fatalf("schedule: %d\n%s", r.code, r.body)
	}
	id, _ = strconv.ParseInt(strings.TrimPrefix(r.location(), "/runs/"), 10, 64)
	run = e.run(id)
	if run.StartAt == nil || !run.StartAt.Equal(time.Date(2030, 7, 4, 13, 15, 0, 0, time.UTC)) || run.State != store.RunScheduled {
		t.Fatalf("scheduled run: %v %s", run.StartAt, run.State)
	}
	json.Unmarshal(run.Params, &got)
	if got["include_broken"] != false || got["mode"] != "fast" {
		t.Errorf("defaults: %s", run.Params)
	}
	if page := c.get(r.location()).body; !strings.Contains(page, "scheduled for 2030-07-04 09:15:00 EDT (2030-07-04 13:15:00 UTC)") {
		t.Errorf("no scheduling flash:\n%s", page)
	}
	if r := c.post("/definitions/ui_touch", "/definitions/nope/runs", url.Values{"p.note": {"x"}}); r.code != http.StatusNotFound {
		t.Errorf("unknown definition: %d", r.code)
	}
}

func TestUIRunsListAndRunPage(t *testing.T) {
	e := newUIEnv(t, 20, nil)
	c := e.client()
	c.login(uiAliceToken)
	var ids []int64
	for i := range 55 {
		who := "alice"
		if i%5 == 0 {
			who = "bob"
		}
		ids = append(ids, e.createRun(who, fmt.Sprintf(`{"note":"note-%d"}`, i), nil).ID)
	}
	failed := e.run(ids[3])
	e.runWithBatches(failed, "boom", "the stack")

	page := c.get("/runs")
	if n := strings.Count(page.body, `<td><a href="/runs/`); n != 50 {
		t.Errorf("first page shows %d runs, want 50", n)
	}
	next := regexp.MustCompile(`href="(/runs\?cursor=[^"]+)" rel="next"`).FindStringSubmatch(page.body)
	if next == nil {
		t.Fatalf("no next page link")
	}
	if n := strings.Count(c.get(html.UnescapeString(next[1])).body, `<td><a href="/runs/`); n != 5 {
		t.Errorf("second page shows %d runs, want 5", n)
	}
	for _, want := range []string{"Last 7 days", "Success rate", `class="week-chart"`, "<dt>Runs</dt><dd>55</dd>", "<dt>Active now</dt><dd>55</dd>",
		`<th class="num">Rate</th><th class="num">Duration</th>`, "<th>Finished</th>", `id="runs-list" data-refresh="5000"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("runs page lacks %q", want)
		}
	}
	if body := c.get("/runs?status=running").body; strings.Count(body, `<td><a href="/runs/`) != 1 || !strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, failed.ID)) {
		t.Errorf("status filter:\n%s", body)
	}
	if n := strings.Count(c.get("/runs?mine=1").body, `<td><a href="/runs/`); n != 44 {
		t.Errorf("mine: %d runs, want 44", n)
	}
	// A run's batch errors are searched too: the failed run's batch
	// failed with "boom".
	if body := c.get("/runs?q=BOOM").body; strings.Count(body, `<td><a href="/runs/`) != 1 || !strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, failed.ID)) {
		t.Errorf("search for a batch error:\n%s", body)
	}
	if body := c.get("/runs?q=note-17").body; strings.Count(body, `<td><a href="/runs/`) != 1 || !strings.Contains(body, fmt.Sprintf(`href="/runs/%d"`, ids[17])) {
		t.Errorf("search note-17:\n%s", body)
	}
	if body := c.get("/runs?q=bob&definition=ui_touch").body; strings.Count(body, `<td><a href="/runs/`) != 11 {
		t.Errorf("search bob: %d", strings.Count(body, `<td><a href="/runs/`))
	}
	if r := c.get("/runs?status=bogus"); r.code != http.StatusUnprocessableEntity {
		t.Errorf("bogus status: %d", r.code)
	}

	run := c.get(fmt.Sprintf("/runs/%d", failed.ID))
	for _, want := range []string{
		`data-field="percent"`, `<progress id="run-progress"`, `data-batch="failed">1<`, `data-batch="succeeded">1<`,
		`data-events="/api/v1/runs/` + strconv.FormatInt(failed.ID, 10) + `/events"`,
		"<summary>boom</summary>", "<pre>the stack</pre>",
		// The reason sits at the top, not only in the batch table.
		`<summary>Failed batches</summary>`, `<p data-field="first-failure">The failed batch: <a href="/runs/` + strconv.FormatInt(failed.ID, 10) + `?batches=failed#batches">#1</a>`,
		`<pre class="batch-error">boom</pre>`,
		fmt.Sprintf(`action="/runs/%d/batches/1/retry"`, failed.ID), "data-confirm=",
		"Retry failed batches", "Cancel run", "1.5s",
		// A live run links to the queue's active tasks.
		"Queue in asynqmon",
		fmt.Sprintf(`src="/runs/%d/throughput.svg"`, failed.ID),
	} {
		if !strings.Contains(run.body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	// The page has both control forms; the live script shows the one that
	// fits the run's state, so a missing form is a failure, not a pass.
	switch pause := formTag(run.body, fmt.Sprintf("/runs/%d/pause", failed.ID)); {
	case pause == "":
		t.Errorf("run page has no pause form")
	case hiddenAttr.MatchString(pause):
		t.Errorf("pause is hidden on a running run: %s", pause)
	}
	switch resume := formTag(run.body, fmt.Sprintf("/runs/%d/resume", failed.ID)); {
	case resume == "":
		t.Errorf("run page has no resume form")
	case !hiddenAttr.MatchString(resume):
		t.Errorf("resume is offered on a running run: %s", resume)
	}
	onlyFailed := c.get(fmt.Sprintf("/runs/%d?batches=failed", failed.ID)).body
	if strings.Count(onlyFailed, "data-batch-row=") != 1 || !strings.Contains(onlyFailed, `<option value="failed" selected>`) {
		t.Errorf("batch state filter:\n%s", onlyFailed)
	}
	svg := c.get(fmt.Sprintf("/runs/%d/throughput.svg", failed.ID))
	if svg.code != 200 || svg.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(svg.body, "<svg") || !strings.Contains(svg.body, "10 rows in 1 batches") {
		t.Errorf("chart: %d %q\n%s", svg.code, svg.header.Get("Content-Type"), svg.body)
	}
	if strings.Contains(svg.body, "style") || strings.Contains(svg.body, "<script") {
		t.Errorf("chart has style or script")
	}

	// Retry the failed batch from the page, then cancel, then a 409.
	path := fmt.Sprintf("/runs/%d", failed.ID)
	if r := c.post(path, path+"/batches/1/retry", nil); r.code != http.StatusSeeOther {
		t.Fatalf("retry batch: %d", r.code)
	}
	if b, _ := e.st.GetBatch(context.Background(), failed.ID, 1); b.State != store.BatchPending || b.Retries != 1 {
		t.Fatalf("batch after retry: %s, %d retries", b.State, b.Retries)
	}
	if body := c.get(path).body; !strings.Contains(body, "Retrying batch 1 of run") || !strings.Contains(body, fmt.Sprintf("/tasks/%d:1:1", failed.ID)) {
		t.Errorf("after retry:\n%s", body)
	}
	if r := c.post(path, path+"/batches/2/retry", nil); r.code != http.StatusSeeOther {
		t.Fatalf("retry of a succeeded batch: %d", r.code)
	}
	if body := c.get(path).body; !strings.Contains(body, "flash-error") || !strings.Contains(body, "no failed batch to retry") {
		t.Errorf("no conflict flash:\n%s", body)
	}
	if r := c.post(path, path+"/cancel", nil); r.code != http.StatusSeeOther {
		t.Fatalf("cancel: %d", r.code)
	}
	if st := e.run(failed.ID).State; st != store.RunCancelled {
		t.Errorf("after cancel: %s", st)
	}
	if body := c.get(path).body; strings.Contains(body, "Queue in asynqmon") || strings.Contains(body, "Failed tasks in asynqmon") {
		t.Errorf("an ended run without failed batches links to the queue, whose view of it is empty")
	}
	// Run again: a new run with the same params and options, by whoever
	// asked.
	resp := c.post(path, path+"/again", nil)
	loc := resp.location()
	newID, err := strconv.ParseInt(strings.TrimPrefix(loc, "/runs/"), 10, 64)
	if resp.code != http.StatusSeeOther || err != nil || newID == failed.ID {
		t.Fatalf("run again: %d to %q", resp.code, loc)
	}
	var again struct{ Note string }
	if nr := e.run(newID); nr.Definition != failed.Definition || json.Unmarshal(nr.Params, &again) != nil || again.Note != "note-3" ||
		!reflect.DeepEqual(nr.Options, e.run(failed.ID).Options) || nr.CreatedBy != "alice" || nr.State != store.RunScheduled {
		t.Errorf("run again made %+v from %+v", nr, e.run(failed.ID))
	}
	if body := c.get(loc).body; !strings.Contains(body, fmt.Sprintf("created with the params and options of run %d", failed.ID)) {
		t.Errorf("no flash after run again:\n%s", body)
	}
	if r := c.post(path, "/runs/99999/pause", nil); r.code != http.StatusNotFound {
		t.Errorf("pause of an unknown run: %d", r.code)
	}
	if r := c.get("/runs/abc"); r.code != http.StatusNotFound {
		t.Errorf("run abc: %d", r.code)
	}
}

func TestUIFlows(t *testing.T) {
	e := newUIEnv(t, 5, nil)
	c := e.client()
	c.login(uiAliceToken)
	page := c.get("/flows")
	for _, want := range []string{"ui_copy", "Copy items", "<dt>table</dt><dd><code>ui_items</code></dd>", "to_copy", "<dt>mode</dt><dd><code>upsert</code></dd>", "every 1h", "none yet", "inactive", `action="/flows/ui_copy/activate"`, `action="/flows/ui_copy/trigger"`, `id="flows-list" data-refresh="5000"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("flows page lacks %q", want)
		}
	}
	if r := c.post("/flows", "/flows/ui_copy/activate", url.Values{"back": {"flow"}}); r.code != http.StatusSeeOther || r.location() != "/flows/ui_copy" {
		t.Fatalf("activate: %d to %q", r.code, r.location())
	}
	if fs, _ := e.st.GetFlow(context.Background(), "ui_copy"); !fs.Active {
		t.Fatal("flow not active")
	}
	if body := c.get("/flows/ui_copy").body; !strings.Contains(body, "activated") || !strings.Contains(body, `action="/flows/ui_copy/deactivate"`) ||
		!strings.Contains(body, `Flows</a> › ui_copy</p>`) || !strings.Contains(body, `id="flow-card" data-refresh="5000"`) {
		t.Errorf("flow page after activation:\n%s", body)
	}
	r := c.post("/flows", "/flows/ui_copy/trigger", nil)
	if r.code != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/runs/") {
		t.Fatalf("trigger: %d to %q", r.code, r.location())
	}
	if r := c.post("/flows", "/flows/ui_copy/trigger", nil); r.code != http.StatusSeeOther || r.location() != "/flows" {
		t.Fatalf("second trigger: %d to %q", r.code, r.location())
	}
	if body := c.get("/flows").body; !strings.Contains(body, "is still scheduled") || !strings.Contains(body, "disabled") {
		t.Errorf("flows page after a refused trigger:\n%s", body)
	}
	if r := c.post("/flows", "/flows/ui_copy/deactivate", nil); r.code != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", r.code)
	}
	if fs, _ := e.st.GetFlow(context.Background(), "ui_copy"); fs.Active {
		t.Fatal("flow still active")
	}
	if r := c.post("/flows", "/flows/nope/activate", nil); r.code != http.StatusNotFound {
		t.Errorf("unknown flow: %d", r.code)
	}
	if r := c.get("/flows/nope"); r.code != http.StatusNotFound {
		t.Errorf("unknown flow page: %d", r.code)
	}
}

// hiddenAttr matches a tag's boolean hidden attribute.
var hiddenAttr = regexp.MustCompile(`\shidden(\s|>|=)`)

// formTag returns the opening tag of the page's form that posts to action,
// or "" when there is none.
func formTag(body, action string) string {
	re := regexp.MustCompile(`<form\s[^>]*action="` + regexp.QuoteMeta(action) + `"[^>]*>`)
	return re.FindString(body)
}
