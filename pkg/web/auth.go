package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Auth says who may use the API and the UI. The first method that
// recognises a request wins: the Authenticate hook, a bearer token (a wrong
// one is refused, whatever else the request carries), the proxy header
// from a trusted proxy, then the UI's session cookie.
type Auth struct {
	// Tokens maps bearer tokens to identities (see ParseTokens).
	Tokens map[string]string
	// ProxyHeader, when set, trusts this request header (such as
	// X-Forwarded-User or X-Forwarded-Email set by oauth2-proxy) as the
	// identity, from a request of a trusted proxy: one from TrustedProxies
	// or carrying ProxySecret. With neither set, only a proxy on the same
	// host (a loopback address) is trusted, and Handler logs a warning.
	ProxyHeader string
	// TrustedProxies are the addresses the proxy header is believed from
	// (DRIPFLOW_TRUSTED_PROXIES, see ParseTrustedProxies).
	TrustedProxies []netip.Prefix
	// ProxySecret, when set, lets a request carrying it in
	// ProxySecretHeader use the proxy header from any address
	// (DRIPFLOW_PROXY_SECRET; compared in constant time).
	ProxySecret string
	// ProxySecretHeader carries ProxySecret; default X-Dripflow-Proxy-Secret.
	ProxySecretHeader string
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

	// Roles gives identities (the names of Tokens) their role (see
	// ParseTokenRoles); an identity without one has DefaultRole.
	Roles map[string]Role
	// DefaultRole is the role of identities without one of their own
	// (tokens without a role, the Authenticate hook's, the proxy's without
	// ProxyRoleHeader); default admin, as before roles existed.
	DefaultRole Role
	// ProxyRoleHeader, when set, is the proxy's header of the identity's
	// groups (comma-separated); the most allowed of viewer, operator and
	// admin among them is the role, viewer when none is.
	ProxyRoleHeader string
	// Authorize, when set, is asked too for every action the role allows
	// (definition is the definition or flow acted on, when known): an
	// error refuses the request with 403 and its message.
	Authorize func(identity string, action Action, definition string) error
}

// ParseTokens parses DRIPFLOW_AUTH_TOKENS: "name:token,name2:token2" or,
// with roles, "name:token:role" (see ParseTokenRoles). Names become the
// identities recorded on runs.
func ParseTokens(s string) (map[string]string, error) {
	tokens, _, err := ParseTokenRoles(s)
	return tokens, err
}

// ParseTokenRoles parses DRIPFLOW_AUTH_TOKENS into tokens (token to name)
// and the roles of the names given one ("ops:token:operator"; a token
// ending in ":viewer", ":operator" or ":admin" needs an explicit role).
func ParseTokenRoles(s string) (map[string]string, map[string]Role, error) {
	out, roles := map[string]string{}, map[string]Role{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, token, ok := strings.Cut(part, ":")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		var role Role
		if i := strings.LastIndex(token, ":"); i >= 0 {
			if r, err := ParseRole(token[i+1:]); err == nil {
				role, token = r, strings.TrimSpace(token[:i])
			}
		}
		if !ok || name == "" || token == "" {
			return nil, nil, fmt.Errorf("auth tokens: %q is not name:token or name:token:role", redact(part))
		}
		if len(token) < 16 {
			return nil, nil, fmt.Errorf("auth tokens: the token of %q is shorter than 16 characters", name)
		}
		if _, dup := out[token]; dup {
			return nil, nil, fmt.Errorf("auth tokens: two identities share a token (%q)", name)
		}
		out[token] = name
		if role != "" {
			if prev, ok := roles[name]; ok && prev != role {
				return nil, nil, fmt.Errorf("auth tokens: %q is given two roles, %s and %s", name, prev, role)
			}
			roles[name] = role
		}
	}
	return out, roles, nil
}

// ParseTrustedProxies parses DRIPFLOW_TRUSTED_PROXIES: CIDRs or single
// addresses separated by commas ("10.0.0.0/8, 192.168.1.7, ::1").
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("trusted proxies: %q is not a CIDR such as 10.0.0.0/8", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("trusted proxies: %q is not an IP address or a CIDR", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// loopback is whom the proxy header is trusted from when no proxy address
// or secret is configured: a proxy on the same host.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func redact(s string) string {
	if name, _, ok := strings.Cut(s, ":"); ok {
		return name + ":…"
	}
	return "…"
}

const (
	sessionCookie = "dripflow_session"
	// visitorCookie is a random id given to a browser before it logs in,
	// so the login form's CSRF token belongs to that browser alone.
	visitorCookie = "dripflow_visitor"
	// DefaultProxySecretHeader carries Auth.ProxySecret.
	DefaultProxySecretHeader = "X-Dripflow-Proxy-Secret"
)

// authenticator resolves identities.
type authenticator struct {
	cfg Auth
	key []byte
	// tokenMACs maps the MAC of each configured token to its identity: a
	// session carries the MAC of the token it was opened with, so it ends
	// when that token is removed from the configuration.
	tokenMACs map[string]string
	proxies   []netip.Prefix
	revoked   revocations
}

func newAuthenticator(cfg Auth, revoked revocations) (*authenticator, error) {
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
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = RoleAdmin
	}
	if cfg.DefaultRole.rank() == 0 {
		return nil, fmt.Errorf("web: unknown default role %q: want viewer, operator or admin", cfg.DefaultRole)
	}
	if cfg.ProxySecretHeader == "" {
		cfg.ProxySecretHeader = DefaultProxySecretHeader
	}
	if revoked == nil {
		revoked = newMemRevocations()
	}
	a := &authenticator{cfg: cfg, key: key, tokenMACs: map[string]string{}, proxies: cfg.TrustedProxies, revoked: revoked}
	if len(a.proxies) == 0 && cfg.ProxySecret == "" {
		a.proxies = loopback
	}
	for tok, id := range cfg.Tokens {
		a.tokenMACs[a.sign("session-token", tok)] = id
	}
	return a, nil
}

// proxyUnrestricted reports whether the proxy header is on with neither
// trusted addresses nor a secret (so only loopback is trusted).
func (a *authenticator) proxyUnrestricted() bool {
	return a.cfg.ProxyHeader != "" && len(a.cfg.TrustedProxies) == 0 && a.cfg.ProxySecret == ""
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
	// A bearer token is checked before the proxy header: a request with a
	// wrong token is refused, whatever identity header it also carries.
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			if id, ok := a.token(strings.TrimSpace(tok)); ok {
				return id, viaToken
			}
		}
		return "", viaNone
	}
	if a.cfg.ProxyHeader != "" {
		if id := strings.TrimSpace(r.Header.Get(a.cfg.ProxyHeader)); id != "" && a.fromProxy(r) {
			return id, viaProxy
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, ok := a.session(r.Context(), c.Value); ok {
			return s.identity, viaSession
		}
	}
	if a.cfg.Disabled {
		return "anonymous", viaDisabled
	}
	return "", viaNone
}

// fromProxy reports whether r comes from a trusted proxy: it carries the
// shared secret, or its peer address is a trusted one.
func (a *authenticator) fromProxy(r *http.Request) bool {
	if a.cfg.ProxySecret != "" {
		if got := r.Header.Get(a.cfg.ProxySecretHeader); got != "" &&
			subtle.ConstantTimeCompare([]byte(got), []byte(a.cfg.ProxySecret)) == 1 {
			return true
		}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range a.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
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

// newSession returns a session cookie value for a login with token:
// identity.expiry.id.tokenMAC.mac, where id names the session (for
// revocation at logout) and tokenMAC binds it to the token.
func (a *authenticator) newSession(identity, token string) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	exp := strconv.FormatInt(time.Now().Add(a.cfg.SessionTTL).Unix(), 10)
	id := base64.RawURLEncoding.EncodeToString([]byte(identity))
	n := base64.RawURLEncoding.EncodeToString(nonce)
	tm := a.sign("session-token", token)
	return id + "." + exp + "." + n + "." + tm + "." + a.sign(id, exp, n, tm)
}

// sessionInfo is what a valid session cookie says.
type sessionInfo struct {
	identity string
	id       string
	expires  time.Time
}

// session checks a session cookie: its signature, expiry, that its token
// is still configured for the same identity and that it was not revoked.
func (a *authenticator) session(ctx context.Context, v string) (sessionInfo, bool) {
	parts := strings.Split(v, ".")
	if len(parts) != 5 {
		return sessionInfo{}, false
	}
	if !hmac.Equal([]byte(parts[4]), []byte(a.sign(parts[0], parts[1], parts[2], parts[3]))) {
		return sessionInfo{}, false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() > exp {
		return sessionInfo{}, false
	}
	id, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return sessionInfo{}, false
	}
	if owner, ok := a.tokenMACs[parts[3]]; !ok || owner != string(id) {
		return sessionInfo{}, false
	}
	revoked, err := a.revoked.revoked(ctx, parts[2])
	if err != nil || revoked {
		// Without the revocation list a logged-out session could pass:
		// refuse it (people log in again once Redis is back).
		return sessionInfo{}, false
	}
	return sessionInfo{identity: string(id), id: parts[2], expires: time.Unix(exp, 0)}, true
}

// revoke ends the session of cookie value v for good.
func (a *authenticator) revoke(ctx context.Context, v string) error {
	s, ok := a.session(ctx, v)
	if !ok {
		return nil
	}
	return a.revoked.revoke(ctx, s.id, s.expires)
}

// csrfToken is bound to the session cookie, or before login to the
// visitor cookie, so a page of another site can neither read nor forge it,
// and one visitor's token is worthless to another. Without either cookie
// there is no valid token.
func (a *authenticator) csrfToken(r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		return a.sign("csrf", c.Value)
	}
	if c, err := r.Cookie(visitorCookie); err == nil && c.Value != "" {
		return a.sign("csrf-visitor", c.Value)
	}
	return ""
}

func (a *authenticator) checkCSRF(r *http.Request, got string) bool {
	want := a.csrfToken(r)
	return got != "" && want != "" && hmac.Equal([]byte(got), []byte(want))
}
