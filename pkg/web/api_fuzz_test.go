package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/web"
)

// fuzzAPI is the web handler on a Redis store, built once per fuzz target
// (a fuzz target's inputs share it) and called without a server.
type fuzzAPI struct {
	st store.Store
	h  http.Handler
}

func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(tb)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	if err := engine.DefaultRegistry.Sync(ctx, st); err != nil {
		tb.Fatal(err)
	}
	h, err := web.Handler(web.Options{
		Store: st, Redis: rdb, Events: events.New(rdb, prefix+"events"), Queue: prefix + "q",
		Auth:   web.Auth{Tokens: map[string]string{aliceToken: "alice"}},
		Logger: zap.NewNop(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return &fuzzAPI{st: st, h: h}
}

func (a *fuzzAPI) do(method, target string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://dripflow.test/", bytes.NewReader(body))
	req.URL.RawQuery = ""
	if path, query, ok := strings.Cut(target, "?"); ok {
		req.URL.Path, req.URL.RawQuery = path, query
	} else {
		req.URL.Path = target
	}
	req.RequestURI = req.URL.RequestURI()
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, req)
	return w
}

// newest returns the id of the newest run (0: none).
func (a *fuzzAPI) newest(tb testing.TB) int64 {
	tb.Helper()
	page, err := a.st.ListRuns(context.Background(), store.RunFilter{Limit: 1})
	if err != nil {
		tb.Fatal(err)
	}
	if len(page.Items) == 0 {
		return 0
	}
	return page.Items[0].ID
}

// checkRefusal fails unless a refused request's answer is a client error
// with the API's error body.
func checkRefusal(tb testing.TB, what string, w *httptest.ResponseRecorder) {
	tb.Helper()
	if w.Code >= 500 {
		tb.Fatalf("%s: %d %s", what, w.Code, w.Body)
	}
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		tb.Fatalf("%s: %d with body %q, want an API error", what, w.Code, w.Body)
	}
}

// FuzzAPICreateRun: whatever the body of POST /api/v1/runs, the answer is
// 201 or a client error with an error body; a refused body creates
// nothing, and a created run has the definition asked for and options in
// range.
func FuzzAPICreateRun(f *testing.F) {
	for _, s := range []string{
		`{"definition":"fix_user_emails","params":{"domain":"example.com"},"batch_size":50}`,
		`{"definition":"fix_user_emails","sleep_ms":10,"batch_timeout_ms":500,"max_in_flight":2,"max_attempts":3,"rows_per_second":100,"error_budget":1}`,
		`{"definition":"fix_user_emails","start_at":"2099-01-02T15:04:05Z"}`,
		`{"definition":"fix_user_emails","batch_size":0}`, `{"definition":"fix_user_emails","batch_size":-1}`,
		`{"definition":"fix_user_emails","sleep_ms":20000000000000}`, `{"definition":"fix_user_emails","batch_timeout_ms":-5}`,
		`{"definition":"fix_user_emails","params":{"nope":1}}`, `{"definition":"fix_user_emails","params":[1]}`,
		`{"definition":"no_such"}`, `{"definition":""}`, `{"definition":"fix_user_emails"}]]`, `{"Batch_Size":1}`,
		`{"definition":"a","definition":"b"}`, `{"definition":"fix_user_emails","batch_size":1.5}`,
		`{"definition":"fix_user_emails","batch_size":99999999999999999999}`, `[]`, `null`, ``, `{`, `"x"`,
		"{\"definition\":\"\xff\"}", `{"definition":"\u0000"}`, `{"definition":"fix_user_emails","start_at":"yesterday"}`,
	} {
		f.Add([]byte(s))
	}
	a := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := a.newest(t)
		w := a.do(http.MethodPost, "/api/v1/runs", body)
		if w.Code != http.StatusCreated {
			checkRefusal(t, "POST /api/v1/runs "+string(body), w)
			if after := a.newest(t); after != before {
				t.Fatalf("refused %s (%d) but run %d was created", body, w.Code, after)
			}
			return
		}
		var got api.Run
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("201 with body %q: %v", w.Body, err)
		}
		var req struct{ Definition string }
		json.Unmarshal(body, &req) //nolint:errcheck // it was accepted
		id, err := strconv.ParseInt(got.ID, 10, 64)
		if err != nil {
			t.Fatalf("201 with run id %q: %v", got.ID, err)
		}
		r, err := a.st.GetRun(context.Background(), id)
		if err != nil {
			t.Fatalf("the created run %s: %v", got.ID, err)
		}
		if r.Definition != req.Definition || got.Definition != req.Definition {
			t.Fatalf("asked for %q, created %q (answered %q)", req.Definition, r.Definition, got.Definition)
		}
		if err := r.Options.Validate(); err != nil {
			t.Fatalf("created run %d with options out of range: %v", r.ID, err)
		}
	})
}

// FuzzAPIListQuery: whatever the query string of a list endpoint, the
// answer is 200 with a JSON body or a client error with an error body.
func FuzzAPIListQuery(f *testing.F) {
	paths := []string{"/api/v1/runs", "/api/v1/runs/1/batches", "/api/v1/flows", "/api/v1/workers", "/api/v1/definitions", "/api/v1/connectors"}
	for i, q := range []string{
		"status=running,failed&definition=fix_user_emails&limit=5", "status=bogus", "limit=-1", "limit=100000", "limit=x",
		"cursor=abc", "cursor=%ff%fe", "definition=%00", "created_by=%c3%28", "mine=true", "status=,,,", "status=%20running%20",
		"status=queued,succeeded,cancelled&limit=1&cursor=", "a=1&a=2", ";;&&==", "limit=9223372036854775808",
	} {
		f.Add(uint8(i), q)
	}
	a := newFuzzAPI(f)
	if w := a.do(http.MethodPost, "/api/v1/runs", []byte(`{"definition":"fix_user_emails"}`)); w.Code != http.StatusCreated {
		f.Fatalf("create a run: %d %s", w.Code, w.Body)
	}
	f.Fuzz(func(t *testing.T, which uint8, query string) {
		target := paths[int(which)%len(paths)] + "?" + query
		w := a.do(http.MethodGet, target, nil)
		if w.Code == http.StatusOK {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("GET %s: 200 with %q", target, w.Body)
			}
			return
		}
		checkRefusal(t, "GET "+target, w)
	})
}
