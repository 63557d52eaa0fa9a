package httpconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// request is what the test server received.
type request struct {
	Method string
	Header http.Header
	Body   string
}

// reply is one scripted response; status 0 closes the connection without
// answering (a network error).
type reply struct {
	status     int
	retryAfter string
	body       string
}

// server is a real HTTP server answering with scripted replies, then 200,
// and recording every request.
type server struct {
	*httptest.Server
	mu      sync.Mutex
	replies []reply
	got     []request
	at      []time.Time
}

func newServer(t *testing.T, replies ...reply) *server {
	t.Helper()
	s := &server{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, request{Method: r.Method, Header: r.Header.Clone(), Body: string(body)})
		s.at = append(s.at, time.Now())
		rep := reply{status: http.StatusOK}
		if len(s.replies) > 0 {
			rep, s.replies = s.replies[0], s.replies[1:]
		}
		s.mu.Unlock()
		if rep.status == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.got...)
}

func build(t *testing.T, cfg *httpconn.Sink) flows.Sink {
	t.Helper()
	s, err := cfg.Build(context.Background(), nil)
	if err != nil {
		t.Fatalf("build %+v: %v", cfg, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func batch(n int) *flows.Batch {
	b := &flows.Batch{Flow: "orders_push", Run: 12, Seq: 4}
	for i := 1; i <= n; i++ {
		b.Records = append(b.Records, flows.Record{"id": i})
	}
	return b
}

func keys(reqs []request, header string) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Header.Get(header))
	}
	return out
}

// TestSinkSendsBatch: a batch is one POST of {"records": [...]} with the
// batch id as Idempotency-Key, JSON content type, and the configured
// headers, one of them read from the environment.
func TestSinkSendsBatch(t *testing.T) {
	t.Setenv("DRIPFLOW_TEST_HTTP_TOKEN", "s3cret")
	srv := newServer(t)
	cfg := &httpconn.Sink{URL: srv.URL + "/ingest?src=dripflow", Headers: map[string]string{
		"Authorization": "$env:DRIPFLOW_TEST_HTTP_TOKEN", "X-Source": "dripflow",
	}}
	s := build(t, cfg)
	if s.Guarantee() != flows.Idempotent || cfg.Guarantee() != flows.Idempotent {
		t.Errorf("guarantee %q, want idempotent", s.Guarantee())
	}
	n, err := s.Write(context.Background(), batch(3))
	if err != nil || n != 3 {
		t.Fatalf("Write = %d, %v; want 3", n, err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	for h, want := range map[string]string{
		"Idempotency-Key": "orders_push/12/4", "Content-Type": "application/json",
		"Authorization": "s3cret", "X-Source": "dripflow",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if r.Method != http.MethodPost || r.Body != `{"records":[{"id":1},{"id":2},{"id":3}]}` {
		t.Errorf("request %s %s", r.Method, r.Body)
	}
	// The stored configuration keeps the reference, not the secret.
	raw, _ := json.Marshal(cfg)
	if strings.Contains(string(raw), "s3cret") || !strings.Contains(string(raw), "$env:DRIPFLOW_TEST_HTTP_TOKEN") {
		t.Errorf("stored settings %s", raw)
	}
	// A variable the process lacks fails every write, naming it, and sends
	// nothing; building still works (a scheduler builds sinks it never
	// writes with).
	cfg.Headers["X-Other"] = "$env:DRIPFLOW_TEST_HTTP_UNSET"
	unset := build(t, cfg)
	if _, err := unset.Write(context.Background(), batch(1)); err == nil || !strings.Contains(err.Error(), "DRIPFLOW_TEST_HTTP_UNSET") {
		t.Errorf("Write with an unset variable: %v; want an error naming it", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("%d requests after the write without its variable, want still 1", n)
	}
}

// TestSinkChunks: max_records splits a batch into requests whose keys get
// a part suffix; array bodies, another method and key header; writing the
// batch again (a retried batch) sends the same keys and bodies.
func TestSinkChunks(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	s := build(t, &httpconn.Sink{URL: srv.URL, Method: http.MethodPut, Body: httpconn.BodyArray, IdempotencyHeader: "X-Request-Id", MaxRecords: 2})
	for range 2 {
		if n, err := s.Write(context.Background(), batch(5)); err != nil || n != 5 {
			t.Fatalf("Write = %d, %v; want 5", n, err)
		}
	}
	reqs := srv.requests()
	want := []string{"orders_push/12/4/part-0", "orders_push/12/4/part-1", "orders_push/12/4/part-2"}
	if diff := cmp.Diff(append(want, want...), keys(reqs, "X-Request-Id")); diff != "" {
		t.Errorf("keys of two deliveries of one batch (-want +got):\n%s", diff)
	}
	var bodies []string
	for _, r := range reqs[:3] {
		bodies = append(bodies, r.Body)
		if r.Method != http.MethodPut || r.Header.Get("Idempotency-Key") != "" {
			t.Errorf("request %s with Idempotency-Key %q", r.Method, r.Header.Get("Idempotency-Key"))
		}
	}
	if diff := cmp.Diff([]string{`[{"id":1},{"id":2}]`, `[{"id":3},{"id":4}]`, `[{"id":5}]`}, bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

// TestSinkRetries: 500, 503, 408, a dropped connection and 429 with
// Retry-After are retried with the same key and body until a 2xx.
func TestSinkRetries(t *testing.T) {
	t.Parallel()
	srv := newServer(t,
		reply{status: 500}, reply{status: 503}, reply{status: 408}, reply{status: 0},
		reply{status: 429, retryAfter: "1"},
	)
	s := build(t, &httpconn.Sink{URL: srv.URL, Backoff: "1ms", MaxBackoff: "5ms", MaxAttempts: 6})
	start := time.Now()
	if n, err := s.Write(context.Background(), batch(2)); err != nil || n != 2 {
		t.Fatalf("Write = %d, %v; want success after retries", n, err)
	}
	reqs := srv.requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6 (5 failures, 1 success)", len(reqs))
	}
	for i, r := range reqs {
		if r.Header.Get("Idempotency-Key") != "orders_push/12/4" || r.Body != reqs[0].Body {
			t.Errorf("attempt %d: key %q body %s; want the first attempt's", i+1, r.Header.Get("Idempotency-Key"), r.Body)
		}
	}
	srv.mu.Lock()
	waited := srv.at[5].Sub(srv.at[4])
	srv.mu.Unlock()
	if waited < time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 1; want at least 1s", waited)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
}

// TestSinkGivesUp: a server that keeps failing gets MaxAttempts requests,
// then the batch fails with the last status and body.
func TestSinkGivesUp(t *testing.T) {
	t.Parallel()
	srv := newServer(t, reply{status: 502, body: "bad gateway"}, reply{status: 502, body: "bad gateway"}, reply{status: 500, body: "still down"})
	s := build(t, &httpconn.Sink{URL: srv.URL, Backoff: "1ms", MaxAttempts: 3})
	_, err := s.Write(context.Background(), batch(1))
	var se *httpconn.StatusError
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "still down") {
		t.Errorf("Write against a failing server: %v; want a StatusError 500 after 3 attempts", err)
	}
	if n := len(srv.requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestSinkClientError: a 4xx other than 408 and 429 fails the batch at once
// with the status and the response body, cut to 1 KiB.
func TestSinkClientError(t *testing.T) {
	t.Parallel()
	long := `{"error": "field id must be a string"}` + strings.Repeat("x", 5000)
	for _, status := range []int{400, 401, 404, 409, 422} {
		srv := newServer(t, reply{status: status, body: long})
		s := build(t, &httpconn.Sink{URL: srv.URL, Backoff: "1ms"})
		_, err := s.Write(context.Background(), batch(4))
		var se *httpconn.StatusError
		if !errors.As(err, &se) || se.StatusCode != status {
			t.Fatalf("status %d: Write = %v; want a StatusError", status, err)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("status %d: %d requests, want 1 (no retry)", status, n)
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprint(status)) || !strings.Contains(msg, "field id must be a string") || !strings.Contains(msg, "orders_push/12/4") {
			t.Errorf("status %d: error %q lacks the status, the body or the batch", status, msg)
		}
		if len(se.Body) > 1024+len("…") || !strings.HasSuffix(se.Body, "…") {
			t.Errorf("status %d: error body is %d bytes, want at most 1 KiB marked as cut", status, len(se.Body))
		}
	}
}

// TestSinkChunkFailure: when a later request of a chunked batch fails, the
// batch fails; its retry sends every part again under the same keys.
func TestSinkChunkFailure(t *testing.T) {
	t.Parallel()
	srv := newServer(t, reply{status: 200}, reply{status: 400, body: "no"})
	s := build(t, &httpconn.Sink{URL: srv.URL, MaxRecords: 1})
	if _, err := s.Write(context.Background(), batch(3)); err == nil || !strings.Contains(err.Error(), "part-1") {
		t.Fatalf("Write with a failing second part: %v; want an error naming part-1", err)
	}
	if n, err := s.Write(context.Background(), batch(3)); err != nil || n != 3 {
		t.Fatalf("retried Write = %d, %v", n, err)
	}
	want := []string{"orders_push/12/4/part-0", "orders_push/12/4/part-1", "orders_push/12/4/part-0", "orders_push/12/4/part-1", "orders_push/12/4/part-2"}
	if diff := cmp.Diff(want, keys(srv.requests(), "Idempotency-Key")); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

// TestSinkTimeoutAndCancel: a request slower than the timeout is retried
// as a network error; a cancelled context stops at once.
func TestSinkTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	s := build(t, &httpconn.Sink{URL: srv.URL, Timeout: "100ms", Backoff: "1ms"})
	if _, err := s.Write(context.Background(), batch(1)); err != nil {
		t.Errorf("Write after a timed out attempt: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Write(ctx, batch(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: %v", err)
	}
}
