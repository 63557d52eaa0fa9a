package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

// TestHTTPServerTimeouts: a slow body and an idle keep-alive connection
// are cut off; a server-sent event stream outlives the read timeout.
func TestHTTPServerTimeouts(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		o.ReadHeaderTimeout = 300 * time.Millisecond
		o.ReadTimeout = 500 * time.Millisecond
		o.IdleTimeout = 500 * time.Millisecond
	})
	h := e.srv.Config.Handler.(*web.Server)
	srv := h.HTTPServer()
	if srv.ReadHeaderTimeout != 300*time.Millisecond || srv.ReadTimeout != 500*time.Millisecond || srv.IdleTimeout != 500*time.Millisecond {
		t.Fatalf("timeouts %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	closedWithin := func(name string, conn net.Conn, d time.Duration) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(d))
		start := time.Now()
		_, err := io.Copy(io.Discard, conn)
		if err != nil {
			t.Errorf("%s: the server did not close the connection within %s (%v after %s)", name, d, err, time.Since(start))
		}
	}
	// A body that never comes.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", aliceToken)
	closedWithin("slow body", conn, 3*time.Second)
	conn.Close()

	// An idle keep-alive connection.
	conn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	closedWithin("idle keep-alive", conn, 3*time.Second)
	conn.Close()

	// A stream of a running run lives on past the read timeout.
	run := e.runInState(store.RunRunning)
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/runs/"+run.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	id, _ := strconv.ParseInt(run.ID, 10, 64)
	time.Sleep(1500 * time.Millisecond)
	if _, err := e.st.TransitionRun(context.Background(), id, store.RunPaused, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"status":"paused"`) {
				got <- sc.Text()
				return
			}
		}
		got <- "stream ended: " + fmt.Sprint(sc.Err())
	}()
	select {
	case s := <-got:
		if strings.HasPrefix(s, "stream ended") {
			t.Errorf("the event stream was cut: %s", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("no paused event")
	}
}

// countingStore counts GetRun calls.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (s *countingStore) GetRun(ctx context.Context, id int64) (store.Run, error) {
	s.gets.Add(1)
	return s.Store.GetRun(ctx, id)
}

// openStream opens a run's event stream and waits for its first event.
func openStream(t *testing.T, ctx context.Context, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	first := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		once := sync.Once{}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				once.Do(func() { close(first) })
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("no first event")
	}
	return 200, ""
}

// TestEventStreamLimits: streams are capped per identity and in total, and
// streams of one run share one poll of the store.
func TestEventStreamLimits(t *testing.T) {
	var cs *countingStore
	e := newAPIEnv(t, func(o *web.Options) {
		cs = &countingStore{Store: o.Store}
		o.Store = cs
		o.MaxEventStreams = 6
		o.MaxEventStreamsPerIdentity = 5
	})
	run := e.runInState(store.RunRunning)
	other := e.runInState(store.RunRunning)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.srv.URL + "/api/v1/runs/" + run.ID + "/events"
	for i := 0; i < 5; i++ {
		if code, body := openStream(t, ctx, events, aliceToken); code != 200 {
			t.Fatalf("stream %d: %d %s", i, code, body)
		}
	}
	time.Sleep(300 * time.Millisecond)
	before := cs.gets.Load()
	time.Sleep(3 * time.Second)
	if polls := cs.gets.Load() - before; polls > 4 {
		t.Errorf("5 streams of one run made %d reads of the run in 3s; want one poll a second for all", polls)
	}

	code, body := openStream(t, ctx, events, aliceToken)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too_many_requests") || !strings.Contains(body, "alice") {
		t.Errorf("alice's 6th stream: %d %s", code, body)
	}
	if code, body := openStream(t, ctx, e.srv.URL+"/api/v1/runs/"+other.ID+"/events", bobToken); code != 200 {
		t.Errorf("bob's first stream: %d %s", code, body)
	}
	code, body = openStream(t, ctx, events, bobToken)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "too_many_requests") {
		t.Errorf("7th stream in all: %d %s", code, body)
	}
	// Closed streams free their places.
	cancel()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := openStream(t, ctx2, events, bobToken)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream after the others closed: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
