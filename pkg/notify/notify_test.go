package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/store"
)

type received struct {
	header http.Header
	body   []byte
}

// receiver answers with the statuses in order (then 200) and records every
// request.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []received
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, received{r.Header.Clone(), body})
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
	io.WriteString(w, "answer\x00 body")
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func fastSender(t *testing.T, cfg notify.Config) *notify.Sender {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	s, err := notify.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleRun() store.Run {
	started := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	finished := started.Add(90 * time.Second)
	return store.Run{
		ID: 42, Definition: "fix_emails", Kind: store.KindBackfill, State: store.RunFailed, CreatedBy: "ada",
		Total: 10000, Error: "2 of 10 batches failed; fix the cause and retry the failed batches",
		Counters:  store.Counters{BatchesSucceeded: 8, BatchesFailed: 2, RowsRead: 8000, RowsWritten: 7990, RowsSkipped: 10},
		StartedAt: &started, FinishedAt: &finished,
	}
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"event":"succeeded"}`)
	now := time.Unix(1764666000, 0)
	sig := notify.Sign("s3cret", now.Unix(), body)
	// Computed independently: printf '1764666000.{"event":"succeeded"}' | openssl dgst -sha256 -hmac s3cret
	if want := "sha256=349e71f1f042f87a8c68ab7ab0756dc7eb62f72cecf7d69ef224853984a5f3e7"; sig != want {
		t.Fatalf("Sign = %s, want %s", sig, want)
	}
	ts := "1764666000"
	for _, tc := range []struct {
		name   string
		secret string
		sig    string
		ts     string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", "s3cret", sig, ts, body, now, nil},
		{"valid within tolerance", "s3cret", sig, ts, body, now.Add(4 * time.Minute), nil},
		{"other secret", "other", sig, ts, body, now, notify.ErrBadSignature},
		{"body changed", "s3cret", sig, ts, []byte(`{"event":"failed"}`), now, notify.ErrBadSignature},
		{"timestamp changed (replay with a fresh time)", "s3cret", sig, "1764666060", body, now, notify.ErrBadSignature},
		{"replayed later", "s3cret", sig, ts, body, now.Add(6 * time.Minute), notify.ErrStale},
		{"from the future", "s3cret", sig, ts, body, now.Add(-6 * time.Minute), notify.ErrStale},
		{"no timestamp", "s3cret", sig, "", body, now, notify.ErrStale},
		{"no signature", "s3cret", "", ts, body, now, notify.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.Verify(tc.secret, tc.sig, tc.ts, tc.body, 5*time.Minute, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDeliverSignsAndSendsPayload(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := fastSender(t, notify.Config{Secret: "s3cret", PublicURL: "https://dripflow.example.com/ops/"})
	info := notify.NewRunInfo(sampleRun(), notify.Failed, "record id=7: poison row 7")
	p := notify.NewPayload(info, s.Config().PublicURL)
	d, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL + "/hook?token=x"}, p)
	if err != nil || d.Attempts != 1 || d.Status != 200 {
		t.Fatalf("Deliver = %+v, %v; want one attempt, 200", d, err)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	h := got[0].header
	if err := notify.Verify("s3cret", h.Get(notify.HeaderSignature), h.Get(notify.HeaderTimestamp), got[0].body, time.Minute, time.Now()); err != nil {
		t.Fatalf("signature of the delivery: %v", err)
	}
	if h.Get(notify.HeaderDelivery) != "run-42-failed-"+itoa(sampleRun().FinishedAt.UnixMicro()) || h.Get(notify.HeaderEvent) != "failed" {
		t.Errorf("headers: delivery %q, event %q", h.Get(notify.HeaderDelivery), h.Get(notify.HeaderEvent))
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "failed", "delivery_id": h.Get(notify.HeaderDelivery), "run_id": "42", "definition": "fix_emails",
		"kind": "backfill", "state": "failed", "created_by": "ada", "total": 10000.0,
		"rows_read": 8000.0, "rows_written": 7990.0, "rows_skipped": 10.0,
		"batches": 10.0, "batches_succeeded": 8.0, "batches_failed": 2.0, "batches_cancelled": 0.0,
		"error": "2 of 10 batches failed; fix the cause and retry the failed batches", "first_batch_error": "record id=7: poison row 7",
		"started_at": "2026-12-02T09:00:00Z", "finished_at": "2026-12-02T09:01:30Z", "duration_ms": 90000.0,
		"url": "https://dripflow.example.com/ops/runs/42",
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
}

func TestDeliverWithoutSecretSendsNoSignature(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := fastSender(t, notify.Config{})
	if _, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL}, notify.NewPayload(notify.NewRunInfo(sampleRun(), notify.Failed, ""), "")); err != nil {
		t.Fatal(err)
	}
	if h := rc.requests()[0].header; h.Get(notify.HeaderSignature) != "" || h.Get(notify.HeaderTimestamp) == "" {
		t.Errorf("signature %q, timestamp %q: want none and one", h.Get(notify.HeaderSignature), h.Get(notify.HeaderTimestamp))
	}
	// A webhook's own secret wins over the global one.
	s = fastSender(t, notify.Config{Secret: "global"})
	p := notify.NewPayload(notify.NewRunInfo(sampleRun(), notify.Failed, ""), "")
	if _, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL, Secret: "own"}, p); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[1]
	if err := notify.Verify("own", r.header.Get(notify.HeaderSignature), r.header.Get(notify.HeaderTimestamp), r.body, time.Minute, time.Now()); err != nil {
		t.Errorf("signed with the webhook's own secret: %v", err)
	}
}

func TestDeliverRetries(t *testing.T) {
	p := notify.NewPayload(notify.NewRunInfo(sampleRun(), notify.Failed, ""), "")
	for _, tc := range []struct {
		name         string
		statuses     []int
		wantAttempts int
		wantErr      string
	}{
		{"server errors then success", []int{500, 503, 429}, 4, ""},
		{"timeout status then success", []int{408}, 2, ""},
		{"gives up after the attempts", []int{500, 500, 500, 500, 500, 500}, 5, "HTTP 500: answer  body"},
		{"a 4xx is final at once", []int{404}, 1, "HTTP 404"},
		{"unauthorised is final", []int{401}, 1, "HTTP 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &receiver{statuses: tc.statuses}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			s := fastSender(t, notify.Config{Secret: "k"})
			d, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL}, p)
			if d.Attempts != tc.wantAttempts || len(rc.requests()) != tc.wantAttempts {
				t.Errorf("attempts = %d (receiver saw %d), want %d", d.Attempts, len(rc.requests()), tc.wantAttempts)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			ids := map[string]bool{}
			for _, r := range rc.requests() {
				ids[r.header.Get(notify.HeaderDelivery)] = true
				if err := notify.Verify("k", r.header.Get(notify.HeaderSignature), r.header.Get(notify.HeaderTimestamp), r.body, time.Minute, time.Now()); err != nil {
					t.Errorf("attempt's signature: %v", err)
				}
			}
			if len(ids) != 1 {
				t.Errorf("delivery ids over the attempts: %v, want one", ids)
			}
		})
	}
}

func TestDeliverBacksOffExponentially(t *testing.T) {
	rc := &receiver{statuses: []int{500, 500, 500}}
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := fastSender(t, notify.Config{Backoff: 100 * time.Millisecond})
	if _, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL}, notify.Payload{Event: notify.Failed}); err != nil {
		t.Fatal(err)
	}
	// Waits of 100, 200 and 400 ms, each ±20 %.
	for i, want := range []time.Duration{100, 200, 400} {
		want *= time.Millisecond
		got := at[i+1].Sub(at[i])
		if got < want*8/10 || got > want*12/10+150*time.Millisecond {
			t.Errorf("wait %d = %s, want %s ±20%%", i+1, got, want)
		}
	}
}

func TestDeliverStopsWithContext(t *testing.T) {
	rc := &receiver{statuses: []int{500, 500, 500, 500}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := fastSender(t, notify.Config{Backoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := s.Deliver(ctx, notify.Webhook{URL: srv.URL}, notify.Payload{Event: notify.Failed})
	if err == nil || d.Attempts != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("Deliver = %+v, %v after %s; want an error after one attempt, at once", d, err, time.Since(start))
	}
}

func TestDeliverNetworkErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T000/B000/SECRETPATH"
	srv.Close() // nothing listens any more
	s := fastSender(t, notify.Config{Attempts: 2})
	d, err := s.Deliver(context.Background(), notify.Webhook{URL: url}, notify.Payload{Event: notify.Failed})
	if err == nil || d.Attempts != 2 {
		t.Fatalf("Deliver = %+v, %v; want 2 attempts and an error", d, err)
	}
	if strings.Contains(err.Error(), "SECRETPATH") {
		t.Errorf("error shows the URL's secret path: %v", err)
	}
}

func TestSlackFormat(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := fastSender(t, notify.Config{})
	r := sampleRun()
	r.Definition = "fix_<emails>"
	p := notify.NewPayload(notify.NewRunInfo(r, notify.Failed, "poison row 7"), "https://dripflow.example.com")
	if _, err := s.Deliver(context.Background(), notify.Webhook{URL: srv.URL, Format: notify.Slack}, p); err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	dec := json.NewDecoder(strings.NewReader(string(rc.requests()[0].body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("slack body %s: %v", rc.requests()[0].body, err)
	}
	want := ":x: dripflow run 42 (fix_&lt;emails&gt;) failed: 7,990 rows written in 10 batches, 2 failed, 1m30s. " +
		"2 of 10 batches failed; fix the cause and retry the failed batches (first error: poison row 7). " +
		"<https://dripflow.example.com/runs/42|Open run 42>"
	if diff := cmp.Diff(map[string]string{"text": want}, body); diff != "" {
		t.Errorf("slack body (-want +got):\n%s", diff)
	}
	started := notify.NewPayload(notify.NewRunInfo(sampleRun(), notify.Started, ""), "")
	if got, want := started.SlackText(), ":arrow_forward: dripflow run 42 (fix_emails) started, started by ada."; got != want {
		t.Errorf("started text = %q, want %q", got, want)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  notify.Config
		want string
	}{
		{"ftp URL", notify.Config{Webhooks: []notify.Webhook{{URL: "ftp://example.com/x"}}}, `webhook 1 (ftp://example.com/…): url: must be an http:// or https:// URL, got scheme "ftp"`},
		{"relative URL", notify.Config{Webhooks: []notify.Webhook{{URL: "/hooks"}}}, `url: must be an http:// or https:// URL, got scheme ""`},
		{"no host", notify.Config{Webhooks: []notify.Webhook{{URL: "https:///path"}}}, "url: must name a host"},
		{"empty URL", notify.Config{Webhooks: []notify.Webhook{{URL: ""}}}, "url: must be an http:// or https:// URL, got an empty one"},
		{"bad format", notify.Config{Webhooks: []notify.Webhook{{URL: "https://x.example", Format: "xml"}}}, `format: must be json or slack, got "xml"`},
		{"bad event", notify.Config{Webhooks: []notify.Webhook{{URL: "https://x.example", Events: []notify.Event{"done"}}}}, `events: unknown event "done"`},
		{"bad public URL", notify.Config{PublicURL: "dripflow.example.com"}, "public URL: must be an http:// or https:// URL"},
		{"negative attempts", notify.Config{Attempts: -1}, "Attempts must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := notify.NewSender(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSender = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := notify.NewSender(notify.Config{Secret: "k", Webhooks: []notify.Webhook{{URL: "http://127.0.0.1:9/x"}, {URL: "https://hooks.slack.com/services/T/B/X", Format: notify.Slack}}}); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestParseURLsAndEvents(t *testing.T) {
	got, err := notify.ParseURLs(" https://a.example/x, http://b.example:8080/y\nhttps://c.example ")
	if err != nil || len(got) != 3 || got[1] != "http://b.example:8080/y" {
		t.Fatalf("ParseURLs = %q, %v", got, err)
	}
	if got, err := notify.ParseURLs(""); err != nil || got != nil {
		t.Errorf("ParseURLs(\"\") = %q, %v; want none", got, err)
	}
	_, err = notify.ParseURLs("https://ok.example, gopher://bad.example/SECRET")
	if err == nil || !strings.Contains(err.Error(), "entry 2 (gopher://bad.example/…)") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("ParseURLs of a bad entry = %v", err)
	}
	evs, err := notify.ParseEvents("")
	if err != nil || !cmp.Equal(evs, notify.EndEvents) {
		t.Errorf("ParseEvents(\"\") = %v, %v; want the end events", evs, err)
	}
	evs, err = notify.ParseEvents("Started, failed,failed")
	if err != nil || !cmp.Equal(evs, []notify.Event{notify.Started, notify.Failed}) {
		t.Errorf("ParseEvents = %v, %v", evs, err)
	}
	if _, err := notify.ParseEvents("started,finished"); err == nil || !strings.Contains(err.Error(), `unknown event "finished"`) {
		t.Errorf("ParseEvents of an unknown event = %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/SECRET": "https://hooks.slack.com/…",
		"http://127.0.0.1:8080":                       "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/?token=SECRET":         "http://127.0.0.1:8080/…",
		"https://user:pass@example.com/":              "https://example.com",
		"::bad":                                       "(invalid URL)",
	} {
		if got := notify.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	r := sampleRun()
	if got := notify.Key(r, notify.Started); got != "run-42-started" {
		t.Errorf("start key = %q", got)
	}
	k1 := notify.Key(r, notify.Failed)
	later := r.FinishedAt.Add(time.Hour)
	r.FinishedAt = &later // retried and ended again
	if k2 := notify.Key(r, notify.Failed); k1 == k2 {
		t.Errorf("a run that ends again has the same key %q", k1)
	}
}
