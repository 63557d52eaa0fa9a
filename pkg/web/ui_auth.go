package web

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

const flashCookie = "dripflow_flash"

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// cookiePath scopes the UI's cookies to the handler's base path.
func (s *Server) cookiePath() string {
	if s.base == "" {
		return "/"
	}
	return s.base + "/"
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: s.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: !s.auth.cfg.InsecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// formCSRF is the token of the UI's forms. A session's token is bound to
// its cookie (auth.csrfToken); identities from a proxy header or a hook have
// no cookie, so theirs is bound to the identity: one person's page never
// carries a token that works for another.
func (s *Server) formCSRF(r *http.Request, q *uiReq) string {
	if q.how == viaSession || q.how == viaNone {
		return s.auth.csrfToken(r)
	}
	return s.auth.sign("csrf-identity", q.identity)
}

func (s *Server) checkFormCSRF(r *http.Request, q *uiReq, got string) bool {
	if q.how == viaSession || q.how == viaNone {
		return s.auth.checkCSRF(r, got)
	}
	return got != "" && hmac.Equal([]byte(got), []byte(s.formCSRF(r, q)))
}

// localHost reports whether browsers treat host as a secure context even
// over plain HTTP (so Secure cookies still work there).
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// safeNext returns where to go after logging in: a local path under the
// base path, never another site. Anything doubtful goes to the start page.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, c := range next {
		// Browsers read "\" as "/" and drop tabs and newlines, so "/\evil"
		// and "/\t/evil" would leave the site.
		if c == '\\' || c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	if u.Path == "/login" || u.Path == "/logout" {
		return "/"
	}
	return next
}

type loginData struct {
	Next     string
	Error    string
	Tokens   bool
	External bool
	// PlainHTTP warns that the Secure session cookie will not stick: the
	// page came over plain HTTP to a host browsers do not treat as secure.
	PlainHTTP bool
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, how := s.auth.identify(r); how != viaNone {
		http.Redirect(w, r, s.base+next, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, next, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	s.ensureVisitor(w, r)
	p := s.newPage(w, r, &uiReq{how: viaNone}, "Log in", "login")
	p.Data = loginData{Next: next, Error: msg, Tokens: len(s.auth.cfg.Tokens) > 0,
		External:  s.auth.cfg.ProxyHeader != "" || s.auth.cfg.Authenticate != nil,
		PlainHTTP: !s.auth.cfg.InsecureCookies && r.TLS == nil && r.Header.Get("X-Forwarded-Proto") != "https" && !localHost(r.Host)}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, status, "login", p)
}

// login exchanges an API token for a session cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, "/", "The form could not be read.")
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if !s.auth.checkCSRF(r, r.PostFormValue("csrf")) {
		s.renderLogin(w, r, http.StatusForbidden, next, "The login form expired; please try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	id, ok := s.auth.token(token)
	if !ok {
		s.log.Info("UI login refused", zapPath(r))
		s.renderLogin(w, r, http.StatusUnauthorized, next, "That token is not valid.")
		return
	}
	s.setCookie(w, sessionCookie, s.auth.newSession(id, token), int(s.auth.cfg.SessionTTL/time.Second))
	s.log.Info("UI login", zap.String("by", id))
	http.Redirect(w, r, s.base+next, http.StatusSeeOther)
}

// ensureVisitor gives a browser that has none a random visitor cookie, the
// login form's CSRF token is bound to (and adds it to r for this request).
func (s *Server) ensureVisitor(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(visitorCookie); err == nil && c.Value != "" {
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	s.setCookie(w, visitorCookie, v, 0)
	r.AddCookie(&http.Cookie{Name: visitorCookie, Value: v})
}

// logout drops the session cookie and revokes the session, so a copy of
// the cookie kept elsewhere stops working too.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id, how := s.auth.identify(r)
	if how == viaNone {
		http.Redirect(w, r, s.base+"/login", http.StatusSeeOther)
		return
	}
	q := &uiReq{identity: id, how: how}
	if err := r.ParseForm(); err != nil || !s.checkFormCSRF(r, q, r.PostFormValue("csrf")) {
		s.uiFail(w, r, q, http.StatusForbidden, "The form's security token is missing or has expired. Go back, reload the page and try again.")
		return
	}
	if how == viaSession {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if err := s.auth.revoke(r.Context(), c.Value); err != nil {
				s.log.Error("revoke session at logout", zapErr(err), zap.String("by", id))
				s.uiFail(w, r, q, http.StatusServiceUnavailable, "The session could not be ended; try again.")
				return
			}
		}
	}
	s.setCookie(w, sessionCookie, "", -1)
	if how != viaSession {
		// A proxy or hook identity cannot be logged out from here.
		s.redirect(w, r, "/", &flash{Kind: "error", Message: "You are signed in by your proxy or application, not a dripflow session; log out there."})
		return
	}
	s.log.Info("UI logout", zap.String("by", id))
	s.redirect(w, r, "/login", &flash{Kind: "ok", Message: "You are logged out."})
}

// flash is a one-time message shown after a redirect.
type flash struct {
	Kind    string // "ok" or "error"
	Message string
}

// setFlash stores the message in a short-lived signed cookie; it is shown
// (escaped, as any text) by the next page.
func (s *Server) setFlash(w http.ResponseWriter, f flash) {
	if len(f.Message) > 600 {
		f.Message = f.Message[:600] + "…"
	}
	v := base64.RawURLEncoding.EncodeToString([]byte(f.Kind + "|" + f.Message))
	s.setCookie(w, flashCookie, v+"."+s.auth.sign("flash", v), 60)
}

func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	s.setCookie(w, flashCookie, "", -1)
	v, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.auth.sign("flash", v))) {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	kind, msg, _ := strings.Cut(string(b), "|")
	if kind != "ok" {
		kind = "error"
	}
	return &flash{Kind: kind, Message: msg}
}
