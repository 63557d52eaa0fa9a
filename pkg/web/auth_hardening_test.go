package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dripflow/dripflow/pkg/web"
)

// TestProxyHeaderTrust: the proxy identity header counts only from a
// trusted proxy address or with the shared secret, and never beats a wrong
// bearer token.
func TestProxyHeaderTrust(t *testing.T) {
	e := newAPIEnv(t, func(o *web.Options) {
		o.Auth.ProxyHeader = "X-Forwarded-Email"
		o.Auth.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		o.Auth.ProxySecret = "proxy-secret-0123456789"
	})
	h := e.srv.Config.Handler
	get := func(remote string, hdr map[string]string) int {
		req := httptest.NewRequest("GET", "/api/v1/runs", nil)
		req.RemoteAddr = remote
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tc := range []struct {
		name   string
		remote string
		hdr    map[string]string
		want   int
	}{
		{"untrusted address, no secret", "203.0.113.7:5000", map[string]string{"X-Forwarded-Email": "mallory@example.com"}, 401},
		{"loopback is not configured", "127.0.0.1:5000", map[string]string{"X-Forwarded-Email": "mallory@example.com"}, 401},
		{"trusted proxy address", "10.1.2.3:5000", map[string]string{"X-Forwarded-Email": "dan@example.com"}, 200},
		{"untrusted address with the secret", "203.0.113.7:5000", map[string]string{"X-Forwarded-Email": "dan@example.com", "X-Dripflow-Proxy-Secret": "proxy-secret-0123456789"}, 200},
		{"untrusted address with a wrong secret", "203.0.113.7:5000", map[string]string{"X-Forwarded-Email": "dan@example.com", "X-Dripflow-Proxy-Secret": "proxy-secret-0123456788"}, 401},
		{"trusted proxy and a wrong bearer token", "10.1.2.3:5000", map[string]string{"X-Forwarded-Email": "dan@example.com", "Authorization": "Bearer wrong-token-0123456789"}, 401},
		{"secret and a wrong bearer token", "203.0.113.7:5000", map[string]string{"X-Forwarded-Email": "dan@example.com", "X-Dripflow-Proxy-Secret": "proxy-secret-0123456789", "Authorization": "Bearer wrong-token-0123456789"}, 401},
		{"a right bearer token", "203.0.113.7:5000", map[string]string{"Authorization": "Bearer " + aliceToken}, 200},
	} {
		if got := get(tc.remote, tc.hdr); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}

	// Configured with neither, only a proxy on the same host (loopback) is
	// trusted, and the start logs a warning.
	var logged syncBuffer
	d := newAPIEnv(t, func(o *web.Options) {
		o.Auth.ProxyHeader = "X-Forwarded-Email"
		o.Logger = newTestLogger(&logged)
	})
	if !strings.Contains(logged.String(), "DRIPFLOW_TRUSTED_PROXIES") {
		t.Errorf("no warning about an unrestricted proxy header; log:\n%s", logged.String())
	}
	for remote, want := range map[string]int{"203.0.113.7:5000": 401, "127.0.0.1:5000": 200, "[::1]:5000": 200} {
		req := httptest.NewRequest("GET", "/api/v1/runs", nil)
		req.RemoteAddr = remote
		req.Header.Set("X-Forwarded-Email", "dan@example.com")
		rec := httptest.NewRecorder()
		d.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("no proxy settings, from %s: %d, want %d", remote, rec.Code, want)
		}
	}
	if _, err := web.ParseTrustedProxies("10.0.0.0/8, 192.168.1.7 ,::1"); err != nil {
		t.Errorf("ParseTrustedProxies: %v", err)
	}
	if _, err := web.ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Error("ParseTrustedProxies accepted 10.0.0.0/33")
	}
}

// TestMonitoringCSRF: a cross-site form post carrying the session cookie
// must not act in asynqmon; the same post from our own pages may.
func TestMonitoringCSRF(t *testing.T) {
	e := newUIEnv(t, 0, nil)
	c := e.client()
	c.login(uiAliceToken)
	queue := e.opts.Queue
	post := func(hdr map[string]string) int {
		t.Helper()
		for k, v := range hdr {
			c.header.Set(k, v)
		}
		defer func() {
			for k := range hdr {
				c.header.Del(k)
			}
		}()
		return c.do("POST", "/monitoring/api/queues/"+queue+":pause", url.Values{}).code
	}
	// Make the queue exist.
	e.rdb.SAdd(context.Background(), "asynq:queues", queue)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"cross-site", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{"same-site other origin", map[string]string{"Origin": "https://other.example", "Sec-Fetch-Site": "same-site"}},
		{"other origin, old browser", map[string]string{"Origin": "https://evil.example"}},
		{"no origin at all", nil},
	} {
		if got := post(tc.hdr); got != http.StatusForbidden {
			t.Errorf("%s: POST pause answered %d, want 403", tc.name, got)
		}
	}
	if paused, _ := e.rdb.Exists(context.Background(), "asynq:{"+queue+"}:paused").Result(); paused != 0 {
		t.Fatal("a cross-site post paused the queue")
	}
	host := strings.TrimPrefix(e.srv.URL, "http://")
	if got := post(map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}); got != http.StatusNoContent {
		t.Errorf("same-origin pause: %d, want 204", got)
	}
	if got := c.do("POST", "/monitoring/api/queues/"+queue+":resume", nil).code; got != http.StatusForbidden {
		t.Errorf("resume without origin: %d", got)
	}
	// Bearer-token calls carry no cookie a site could ride on.
	bearer := func(action string) int {
		req, _ := http.NewRequest("POST", e.srv.URL+"/monitoring/api/queues/"+queue+":"+action, nil)
		req.Header.Set("Authorization", "Bearer "+uiAliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := bearer("resume"); got != http.StatusNoContent {
		t.Errorf("bearer-token resume: %d", got)
	}
	if got := post(map[string]string{"Origin": "http://" + host}); got != http.StatusNoContent {
		t.Errorf("same-origin (Origin only) pause: %d, want 204", got)
	}
	if got := bearer("resume"); got != http.StatusNoContent {
		t.Errorf("bearer-token resume: %d", got)
	}
	// Reading stays open to the session.
	if r := c.get("/monitoring/api/queues"); r.code != 200 {
		t.Errorf("GET queues: %d", r.code)
	}
}

// TestSessionRevocation: a session ends at logout and when its token is
// removed from the configuration.
func TestSessionRevocation(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	e := newUIEnv(t, 0, func(o *web.Options) { o.Auth.SessionKey = key })
	c := e.client()
	c.login(uiAliceToken)
	old := *c.cookies["dripflow_session"]
	runs := c.get("/runs")
	if runs.code != 200 {
		t.Fatalf("runs: %d", runs.code)
	}
	if r := c.do("POST", "/logout", url.Values{"csrf": {csrfOf(t, runs.body)}}); r.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.code)
	}
	// Someone kept the cookie: it no longer works, on the UI or the API.
	c.cookies["dripflow_session"] = &old
	if r := c.get("/runs"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Errorf("UI with a logged-out session: %d to %q", r.code, r.location())
	}
	if r := c.get("/api/v1/runs"); r.code != http.StatusUnauthorized {
		t.Errorf("API with a logged-out session: %d", r.code)
	}

	// A session of a token that is no longer configured does not work on a
	// restarted server with the same session key.
	c2 := e.client()
	c2.login(uiAliceToken)
	if r := c2.get("/runs"); r.code != 200 {
		t.Fatalf("second login: %d", r.code)
	}
	opts := e.opts
	opts.Auth.Tokens = map[string]string{uiBobToken: "bob"}
	h, err := web.Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/runs", nil)
	req.AddCookie(&http.Cookie{Name: "dripflow_session", Value: c2.cookies["dripflow_session"].Value})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("session of a removed token: %d, want 401", resp.StatusCode)
	}
	// The same server with the token kept still takes it.
	opts.Auth.Tokens = map[string]string{uiAliceToken: "alice", uiBobToken: "bob"}
	h2, err := web.Handler(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	rec := httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/api/v1/runs", nil)
	req.AddCookie(&http.Cookie{Name: "dripflow_session", Value: c2.cookies["dripflow_session"].Value})
	h2.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("session of a kept token after restart: %d", rec.Code)
	}
}

// TestLoginCSRFPerVisitor: the login form's token belongs to one visitor.
func TestLoginCSRFPerVisitor(t *testing.T) {
	e := newUIEnv(t, 0, nil)
	a, b := e.client(), e.client()
	ta, tb := csrfOf(t, a.get("/login").body), csrfOf(t, b.get("/login").body)
	if ta == tb {
		t.Fatalf("two visitors got the same login CSRF token %q", ta)
	}
	// b posts a's token (an attacker's own token planted in a victim's form).
	if r := b.do("POST", "/login", url.Values{"csrf": {ta}, "token": {uiAliceToken}, "next": {"/runs"}}); r.code != http.StatusForbidden {
		t.Errorf("login with another visitor's token: %d, want 403", r.code)
	}
	// Without any cookie, no token works.
	fresh := e.client()
	if r := fresh.do("POST", "/login", url.Values{"csrf": {ta}, "token": {uiAliceToken}, "next": {"/runs"}}); r.code != http.StatusForbidden {
		t.Errorf("login without the visitor cookie: %d, want 403", r.code)
	}
	if r := a.do("POST", "/login", url.Values{"csrf": {ta}, "token": {uiAliceToken}, "next": {"/runs"}}); r.code != http.StatusSeeOther {
		t.Errorf("login with one's own token: %d", r.code)
	}
}

// syncBuffer is a log sink tests can read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newTestLogger(w *syncBuffer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zap.DebugLevel))
}
