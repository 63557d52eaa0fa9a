package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Auth says who may use the API and the UI. The first method that
// recognises a request wins: the Authenticate hook, the trusted proxy
// header, a bearer token, then the UI's session cookie.
type Auth struct {
	// Tokens maps bearer tokens to identities (see ParseTokens).
	Tokens map[string]string
	// ProxyHeader, when set, trusts this request header (such as
	// X-Forwarded-User or X-Forwarded-Email set by oauth2-proxy) as the
	// identity. Only use it behind a proxy that always sets it.
	ProxyHeader string
	// Authenticate lets an application that embeds dripflow use its own
	// authentication: return the identity and true, or false to fall
	// through to the other methods.
	Authenticate func(*http.Request) (identity string, ok bool)
	// Disabled lets every request in as "anonymous". For local development
	// only; it must be chosen explicitly.
	Disabled bool
	// SessionKey signs the UI's session cookies; a random key is used when
	// empty (sessions then end when the process restarts).
	SessionKey []byte
	// SessionTTL is how long a UI login lasts; default 12h.
	SessionTTL time.Duration
	// InsecureCookies drops the Secure flag from cookies, for plain-HTTP
	// development servers.
	InsecureCookies bool
}

// ParseTokens parses DRIPFLOW_AUTH_TOKENS: "name:token,name2:token2". Names
// become the identities recorded on runs.
func ParseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, token, ok := strings.Cut(part, ":")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		if !ok || name == "" || token == "" {
			return nil, fmt.Errorf("auth tokens: %q is not name:token", redact(part))
		}
		if len(token) < 16 {
			return nil, fmt.Errorf("auth tokens: the token of %q is shorter than 16 characters", name)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("auth tokens: two identities share a token (%q)", name)
		}
		out[token] = name
	}
	return out, nil
}

func redact(s string) string {
	if name, _, ok := strings.Cut(s, ":"); ok {
		return name + ":…"
	}
	return "…"
}

const sessionCookie = "dripflow_session"

// authenticator resolves identities.
type authenticator struct {
	cfg Auth
	key []byte
}

func newAuthenticator(cfg Auth) (*authenticator, error) {
	if !cfg.Disabled && len(cfg.Tokens) == 0 && cfg.ProxyHeader == "" && cfg.Authenticate == nil {
		return nil, errors.New("web: no authentication configured: set auth tokens (DRIPFLOW_AUTH_TOKENS=name:token,…), a trusted proxy header or an Authenticate hook, or disable authentication explicitly for development")
	}
	key := cfg.SessionKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	return &authenticator{cfg: cfg, key: key}, nil
}

// via says how a request was authenticated.
type via int

const (
	viaNone via = iota
	viaHook
	viaProxy
	viaToken
	viaSession
	viaDisabled
)

func (a *authenticator) identify(r *http.Request) (string, via) {
	if a.cfg.Authenticate != nil {
		if id, ok := a.cfg.Authenticate(r); ok && id != "" {
			return id, viaHook
		}
	}
	if a.cfg.ProxyHeader != "" {
		if id := strings.TrimSpace(r.Header.Get(a.cfg.ProxyHeader)); id != "" {
			return id, viaProxy
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			if id, ok := a.token(strings.TrimSpace(tok)); ok {
				return id, viaToken
			}
		}
		return "", viaNone
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if id, ok := a.session(c.Value); ok {
			return id, viaSession
		}
	}
	if a.cfg.Disabled {
		return "anonymous", viaDisabled
	}
	return "", viaNone
}

// token finds the identity of a bearer token in constant time per token.
func (a *authenticator) token(tok string) (string, bool) {
	var found string
	for t, id := range a.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			found = id
		}
	}
	return found, found != ""
}

func (a *authenticator) sign(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession returns a session cookie value: identity|expiry|nonce|mac.
func (a *authenticator) newSession(identity string) string {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	exp := strconv.FormatInt(time.Now().Add(a.cfg.SessionTTL).Unix(), 10)
	id := base64.RawURLEncoding.EncodeToString([]byte(identity))
	n := base64.RawURLEncoding.EncodeToString(nonce)
	return id + "." + exp + "." + n + "." + a.sign(id, exp, n)
}

func (a *authenticator) session(v string) (string, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 4 {
		return "", false
	}
	if !hmac.Equal([]byte(parts[3]), []byte(a.sign(parts[0], parts[1], parts[2]))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() > exp {
		return "", false
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", false
	}
	return string(id), true
}

// csrfToken is bound to the session cookie, so a page of another site can
// neither read nor forge it.
func (a *authenticator) csrfToken(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return a.sign("csrf", "anonymous")
	}
	return a.sign("csrf", c.Value)
}

func (a *authenticator) checkCSRF(r *http.Request, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(a.csrfToken(r)))
}
