// Package web serves dripflow's JSON API (v1), the live UI and asynqmon under
// /monitoring, all behind one authentication layer. Handler returns an
// http.Handler an application can mount under any prefix.
package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/cfgutil"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// Options configure the web handler.
type Options struct {
	Store    store.Store
	Registry *engine.Registry // default engine.DefaultRegistry
	Redis    redis.UniversalClient
	// RedisURL lets asynqmon connect to the queue's Redis; without it
	// /monitoring is not served.
	RedisURL string
	DB       *gorm.DB // for previews (counting a scope)
	// Resources are the named connections flows' connectors are built with
	// for previews, shared with the rest of the process; default only DB.
	// Without them, every preview of a flow would connect anew.
	Resources *engine.Resources
	Events    *events.Bus
	Queue     string // the batch queue's name; default tasks.DefaultQueue
	Auth      Auth
	// BasePath is the prefix the handler is mounted under ("" or "/ops").
	BasePath string
	// MonitoringReadOnly hides asynqmon's actions.
	MonitoringReadOnly bool
	// PrometheusAddress is passed to asynqmon for its charts.
	PrometheusAddress string
	// MaxBodyBytes bounds request bodies; default MaxBodyBytesDefault.
	MaxBodyBytes int64
	// MaxRunBodyBytes bounds instead the bodies of the requests that start
	// or preview a run (POST /api/v1/runs, the start form), which may carry
	// a CSV param of up to params.MaxCSVBytes; default MaxRunBodyBytesDefault.
	MaxRunBodyBytes int64
	// Metrics, when set, is served at /metrics, to authenticated callers
	// (any role; Prometheus sends a token with its scrape config's
	// authorization) unless PublicMetrics.
	Metrics http.Handler
	// PresenceKey is the Redis key of the workers' registry (see
	// worker.Presence); default worker.DefaultPresenceKey.
	PresenceKey string
	// PublicMetrics serves Metrics without authentication.
	PublicMetrics bool
	Logger        *zap.Logger // default zap.NewNop()

	// ReadHeaderTimeout (default 10s), ReadTimeout (default 1m) and
	// IdleTimeout (default 2m) are those of HTTPServer. It has no
	// WriteTimeout, which would end event streams: they bound each write
	// (30s) instead, and their age if EventStreamMaxAge is set.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxEventStreams caps the open event streams in all (default 200),
	// and MaxEventStreamsPerIdentity those of one identity (default 20);
	// beyond them a stream is refused with 429.
	MaxEventStreams, MaxEventStreamsPerIdentity int
	// EventStreamMaxAge, when set, ends a stream after this long (the
	// browser's EventSource reconnects; pkg/client's Watch returns). By
	// default a stream lasts until its run ends or its client leaves (a
	// closed connection ends it at once, a client that stops reading at
	// the next write's 30s deadline; a keep-alive is written every 15s).
	EventStreamMaxAge time.Duration
	// RunDefaults are the process's DRIPFLOW_DEFAULT_* run options, applied
	// to runs created through the API and the UI, and shown as the
	// definitions' effective defaults.
	RunDefaults control.Defaults

	// TracerProvider traces requests (see trace.go) and records each run
	// created as the root of its trace; nil: tracing off.
	TracerProvider trace.TracerProvider
}

// MaxBodyBytesDefault bounds request bodies when Options.MaxBodyBytes is 0.
const MaxBodyBytesDefault = 1 << 20

// WithDefaults returns o with every zero field set to its default. It leaves
// negative values alone, for validation to reject.
func (o Options) WithDefaults() Options {
	if o.Registry == nil {
		o.Registry = engine.DefaultRegistry
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = MaxBodyBytesDefault
	}
	if o.MaxRunBodyBytes == 0 {
		o.MaxRunBodyBytes = MaxRunBodyBytesDefault
	}
	if o.Queue == "" {
		o.Queue = tasks.DefaultQueue
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Resources == nil {
		o.Resources = engine.NewResources(o.DB, nil, o.Logger)
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = time.Minute
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.MaxEventStreams == 0 {
		o.MaxEventStreams = 200
	}
	if o.MaxEventStreamsPerIdentity == 0 {
		o.MaxEventStreamsPerIdentity = 20
	}
	return o
}

func (o Options) validate() error {
	if o.Store == nil {
		return errors.New("web: Store is required")
	}
	if err := cmp.Or(
		cfgutil.NotNegative("MaxBodyBytes", o.MaxBodyBytes),
		cfgutil.NotNegative("MaxRunBodyBytes", o.MaxRunBodyBytes),
		cfgutil.NotNegative("ReadHeaderTimeout", o.ReadHeaderTimeout),
		cfgutil.NotNegative("ReadTimeout", o.ReadTimeout),
		cfgutil.NotNegative("IdleTimeout", o.IdleTimeout),
		cfgutil.NotNegative("EventStreamMaxAge", o.EventStreamMaxAge),
		cfgutil.NotNegative("MaxEventStreams", o.MaxEventStreams),
		cfgutil.NotNegative("MaxEventStreamsPerIdentity", o.MaxEventStreamsPerIdentity),
	); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

// HTTPServer returns an http.Server serving s with the timeouts of its
// Options, so a slow request body or an idle keep-alive connection does
// not hold a connection for ever.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{Handler: s, ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout: s.opts.ReadTimeout, IdleTimeout: s.opts.IdleTimeout}
}

// Server is the web handler.
type Server struct {
	opts  Options
	log   *zap.Logger
	auth  *authenticator
	ctl   *control.Controller
	tasks *tasks.Client
	mux   *http.ServeMux
	root  http.Handler // mux, traced
	base  string
	ui    *ui
	mon   tasks.MonitorHandler // nil without Options.RedisURL
	hub   *runHub
}

// Close closes the Redis connections of /monitoring (asynqmon opens its own
// from Options.RedisURL). The handler must not serve after it.
func (s *Server) Close() error {
	if s.mon == nil {
		return nil
	}
	return s.mon.Close()
}

// Handler builds the web handler.
func Handler(opts Options) (*Server, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := opts.RunDefaults.Validate(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	var revoked revocations
	if opts.Redis != nil {
		revoked = &redisRevocations{rdb: opts.Redis, prefix: "dripflow:web:revoked-session:"}
	}
	auth, err := newAuthenticator(opts.Auth, revoked)
	if err != nil {
		return nil, err
	}
	if auth.proxyUnrestricted() {
		opts.Logger.Warn("the proxy identity header " + opts.Auth.ProxyHeader + " is trusted from loopback addresses only: " +
			"set DRIPFLOW_TRUSTED_PROXIES to your proxy's addresses or DRIPFLOW_PROXY_SECRET to a secret it sends")
	}
	s := &Server{
		opts: opts, log: opts.Logger, auth: auth,
		ctl:  &control.Controller{Store: opts.Store, Registry: opts.Registry, Events: opts.Events, Defaults: opts.RunDefaults, TracerProvider: opts.TracerProvider},
		mux:  http.NewServeMux(),
		base: strings.TrimSuffix(opts.BasePath, "/"),
	}
	s.hub = newRunHub(opts.Store, opts.Logger, time.Second, opts.MaxEventStreams, opts.MaxEventStreamsPerIdentity)
	if opts.Redis != nil {
		var err error
		if s.tasks, err = tasks.NewClient(opts.Redis, tasks.Config{Queue: opts.Queue}); err != nil {
			return nil, err
		}
	}
	s.routes()
	s.root = s.traced(s.mux)
	if opts.RedisURL != "" {
		mon, err := tasks.Monitor(tasks.MonitorOptions{
			RedisURL: opts.RedisURL, RootPath: s.base + "/monitoring",
			ReadOnly: opts.MonitoringReadOnly, PrometheusAddress: opts.PrometheusAddress,
		})
		if err != nil {
			return nil, err
		}
		s.mon = mon
		s.mux.Handle("/monitoring/", s.requireUI(s.guardMonitoring(s.withBackLink(s.withBasePath(mon)))))
		s.mux.Handle("/monitoring", http.RedirectHandler(s.base+"/monitoring/", http.StatusFound))
	}
	return s, nil
}

func (s *Server) routes() {
	api := func(pattern string, action Action, h func(http.ResponseWriter, *http.Request, string)) {
		s.mux.Handle(pattern, s.requireAPI(action, h))
	}
	api("GET /api/v1/definitions", ActionRead, s.listDefinitions)
	api("GET /api/v1/definitions/{name}/preview", ActionRead, s.preview)
	api("GET /api/v1/definitions/{name}", ActionRead, s.getDefinition)
	// createRun authorizes itself, once it knows the definition.
	api("POST /api/v1/runs", "", s.createRun)
	api("GET /api/v1/runs", ActionRead, s.listRuns)
	api("GET /api/v1/runs/{id}", ActionRead, s.getRun)
	api("POST /api/v1/runs/{id}/pause", ActionControl, s.pauseRun)
	api("POST /api/v1/runs/{id}/resume", ActionControl, s.resumeRun)
	api("POST /api/v1/runs/{id}/start", ActionControl, s.startRun)
	api("POST /api/v1/runs/{id}/reschedule", ActionControl, s.rescheduleRun)
	api("GET /api/v1/workers", ActionRead, s.listWorkers)
	api("POST /api/v1/runs/{id}/cancel", ActionControl, s.cancelRun)
	api("POST /api/v1/runs/{id}/retry", ActionControl, s.retryRun)
	api("GET /api/v1/runs/{id}/batches", ActionRead, s.listBatches)
	api("POST /api/v1/runs/{id}/batches/{batch}/retry", ActionControl, s.retryBatch)
	api("GET /api/v1/runs/{id}/events", ActionRead, s.runEvents)
	api("GET /api/v1/runs/{id}/timeline", ActionRead, s.runTimeline)
	api("GET /api/v1/flows", ActionRead, s.listFlows)
	api("GET /api/v1/connectors", ActionRead, s.listConnectors)
	api("POST /api/v1/flows/{name}/activate", ActionFlows, s.activateFlow)
	api("POST /api/v1/flows/{name}/deactivate", ActionFlows, s.deactivateFlow)
	api("POST /api/v1/flows/{name}/trigger", ActionFlows, s.triggerFlow)
	// Flow specs (api_flowspecs.go). createFlow authorizes itself once it
	// knows the flow's name; validating stores nothing, so any role may.
	api("POST /api/v1/flows", "", s.createFlow)
	api("POST /api/v1/flows/validate", ActionRead, s.validateFlow)
	api("GET /api/v1/flows/{name}", ActionRead, s.getFlow)
	api("PUT /api/v1/flows/{name}", ActionFlows, s.updateFlow)
	api("DELETE /api/v1/flows/{name}", ActionFlows, s.deleteFlow)
	api("GET /api/v1/flows/{name}/versions", ActionRead, s.listFlowVersions)
	api("GET /api/v1/flows/{name}/versions/{version}", ActionRead, s.getFlowVersion)
	s.mux.HandleFunc("GET /api/v1/openapi.json", s.openAPI)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorf(codeNotFound, "", "no API route %s %s", r.Method, r.URL.Path))
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	if s.opts.Metrics != nil {
		if s.opts.PublicMetrics {
			s.mux.Handle("GET /metrics", s.opts.Metrics)
		} else {
			api("GET /metrics", ActionRead, func(w http.ResponseWriter, r *http.Request, _ string) { s.opts.Metrics.ServeHTTP(w, r) })
		}
	}
	s.uiRoutes()
}

// ServeHTTP strips the base path, applies limits and security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, s.base+"/monitoring") {
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.bodyLimit(r, strings.TrimPrefix(r.URL.Path, s.base)))
	}
	if s.base != "" {
		if !strings.HasPrefix(r.URL.Path, s.base) {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, s.base)
		if r2.URL.Path == "" {
			r2.URL.Path = "/"
		}
		r2.URL.RawPath = ""
		r = r2
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", zap.Any("panic", v), zap.String("path", r.URL.Path), zap.Stack("stack"))
			writeError(w, http.StatusInternalServerError, errorf(codeInternal, "", "internal error"))
		}
	}()
	s.root.ServeHTTP(w, r)
}

// requireAPI authenticates API requests: 401 without an identity, 403 for
// a cookie-authenticated change without the CSRF header or an action the
// identity's role does not allow ("" when the handler checks, see allow).
func (s *Server) requireAPI(action Action, h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, how := s.auth.identify(r)
		if how == viaNone {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dripflow"`)
			writeError(w, http.StatusUnauthorized, errorf(codeUnauthorized, "", "authentication required: send Authorization: Bearer <token>"))
			return
		}
		// A browser sends cookies (a session, or those an auth proxy turns
		// into its identity header) with requests other sites make it send.
		// Changes not authenticated by a bearer token must prove they come
		// from a page of ours (the session's CSRF token) or from a client
		// that sets Content-Type: application/json, which another site
		// cannot do without a CORS preflight that is never granted.
		if d := checkRequestText(r); d != nil {
			writeError(w, http.StatusUnprocessableEntity, *d)
			return
		}
		if how != viaToken && r.Method != http.MethodGet && r.Method != http.MethodHead {
			json := strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type"))), "application/json")
			if !json && !s.auth.checkCSRF(r, r.Header.Get("X-CSRF-Token")) {
				writeError(w, http.StatusForbidden, errorf(codeForbidden, "", "send Content-Type: application/json or a valid X-CSRF-Token"))
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), whoKey{}, who{id, how}))
		if action != "" && !s.allow(w, r, action, s.subjectOf(r)) {
			return
		}
		h(w, r, id)
	})
}

// whoKey keys the request's identity in its context.
type whoKey struct{}

// who is the identity of a request and how it was authenticated.
type who struct {
	id  string
	how via
}

// subjectOf is the definition a request acts on, for the Authorize hook:
// the {name} of a definition or flow, or the definition of run {id}.
func (s *Server) subjectOf(r *http.Request) string {
	if s.auth.cfg.Authorize == nil {
		return ""
	}
	if name := r.PathValue("name"); name != "" {
		return name
	}
	if id, err := pathID(r, "id"); err == nil {
		if run, err := s.opts.Store.GetRun(r.Context(), id); err == nil {
			return run.Definition
		}
	}
	return ""
}

// allow checks that the request's identity may do action on definition;
// if not, it answers 403 (JSON for the API, a page for the UI) and says
// false.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, action Action, definition string) bool {
	c, _ := r.Context().Value(whoKey{}).(who)
	err := s.auth.authorize(r, c.id, c.how, action, definition)
	if err == nil {
		return true
	}
	s.log.Info("request forbidden", zap.String("by", c.id), zap.String("action", string(action)), zapPath(r))
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/monitoring/") {
		writeError(w, http.StatusForbidden, errorf(codeForbidden, "", "%s", err.Error()))
	} else {
		s.uiFail(w, r, &uiReq{identity: c.id, how: c.how}, http.StatusForbidden, err.Error()+".")
	}
	return false
}

// guardMonitoring refuses asynqmon's changes (pause a queue, delete or run
// tasks…) that a page of another site could make a browser send with our
// cookies: an unsafe method must come from our own origin (the browser's
// Sec-Fetch-Site or Origin says so) or carry the X-CSRF-Token of the
// session. A bearer token is no cookie, so such calls pass.
func (s *Server) guardMonitoring(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		id, how := s.auth.identify(r)
		if how == viaToken || sameOrigin(r) || s.auth.checkCSRF(r, r.Header.Get("X-CSRF-Token")) {
			r = r.WithContext(context.WithValue(r.Context(), whoKey{}, who{id, how}))
			if s.allow(w, r, ActionMonitoring, "") {
				h.ServeHTTP(w, r)
			}
			return
		}
		s.log.Warn("cross-site change to /monitoring refused", zapPath(r), zap.String("origin", r.Header.Get("Origin")),
			zap.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		writeError(w, http.StatusForbidden, errorf(codeForbidden, "", "changes under /monitoring must come from dripflow's own pages (same origin) or carry an X-CSRF-Token"))
	})
}

// sameOrigin reports whether a browser says r comes from a page of the
// same origin: Sec-Fetch-Site when it sends one, else an Origin whose host
// is the request's. A request with neither is not known to be ours.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		// Behind a reverse proxy the browser's origin is the proxy's.
		host = strings.TrimSpace(strings.Split(fh, ",")[0])
	}
	return strings.EqualFold(u.Host, host)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	problems := map[string]string{}
	if err := s.opts.Store.Ping(ctx); err != nil {
		problems["store"] = "unreachable"
	}
	if s.opts.Redis != nil {
		if err := s.opts.Redis.Ping(ctx).Err(); err != nil {
			problems["redis"] = "unreachable"
		}
	}
	if s.opts.DB != nil {
		if sqlDB, err := s.opts.DB.DB(); err != nil || sqlDB.PingContext(ctx) != nil {
			problems["database"] = "unreachable"
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}
