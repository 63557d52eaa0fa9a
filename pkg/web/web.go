// Package web serves dripflow's JSON API (v1), the live UI and asynqmon under
// /monitoring, all behind one authentication layer. Handler returns an
// http.Handler an application can mount under any prefix.
package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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
	Events   *events.Bus
	Queue    string // the batch queue's name; default tasks.DefaultQueue
	Auth     Auth
	// BasePath is the prefix the handler is mounted under ("" or "/ops").
	BasePath string
	// MonitoringReadOnly hides asynqmon's actions.
	MonitoringReadOnly bool
	// PrometheusAddress is passed to asynqmon for its charts.
	PrometheusAddress string
	// MaxBodyBytes bounds request bodies; default MaxBodyBytesDefault.
	MaxBodyBytes int64
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
	Logger  *zap.Logger // default zap.NewNop()
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
	if o.Queue == "" {
		o.Queue = tasks.DefaultQueue
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

func (o Options) validate() error {
	if o.Store == nil {
		return errors.New("web: Store is required")
	}
	if err := cfgutil.NotNegative("MaxBodyBytes", o.MaxBodyBytes); err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}

// Server is the web handler.
type Server struct {
	opts  Options
	log   *zap.Logger
	auth  *authenticator
	ctl   *control.Controller
	tasks *tasks.Client
	mux   *http.ServeMux
	base  string
	ui    *ui
	mon   tasks.MonitorHandler // nil without Options.RedisURL
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
	auth, err := newAuthenticator(opts.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts: opts, log: opts.Logger, auth: auth,
		ctl:  &control.Controller{Store: opts.Store, Registry: opts.Registry, Events: opts.Events},
		mux:  http.NewServeMux(),
		base: strings.TrimSuffix(opts.BasePath, "/"),
	}
	if opts.Redis != nil {
		s.tasks = tasks.NewClient(opts.Redis, tasks.Config{Queue: opts.Queue})
	}
	s.routes()
	if opts.RedisURL != "" {
		mon, err := tasks.Monitor(tasks.MonitorOptions{
			RedisURL: opts.RedisURL, RootPath: s.base + "/monitoring",
			ReadOnly: opts.MonitoringReadOnly, PrometheusAddress: opts.PrometheusAddress,
		})
		if err != nil {
			return nil, err
		}
		s.mon = mon
		s.mux.Handle("/monitoring/", s.requireUI(s.withBasePath(mon)))
		s.mux.Handle("/monitoring", http.RedirectHandler(s.base+"/monitoring/", http.StatusFound))
	}
	return s, nil
}

func (s *Server) routes() {
	api := func(pattern string, h func(http.ResponseWriter, *http.Request, string)) {
		s.mux.Handle(pattern, s.requireAPI(h))
	}
	api("GET /api/v1/definitions", s.listDefinitions)
	api("GET /api/v1/definitions/{name}/preview", s.preview)
	api("POST /api/v1/runs", s.createRun)
	api("GET /api/v1/runs", s.listRuns)
	api("GET /api/v1/runs/{id}", s.getRun)
	api("POST /api/v1/runs/{id}/pause", s.pauseRun)
	api("POST /api/v1/runs/{id}/resume", s.resumeRun)
	api("POST /api/v1/runs/{id}/cancel", s.cancelRun)
	api("POST /api/v1/runs/{id}/retry", s.retryRun)
	api("GET /api/v1/runs/{id}/batches", s.listBatches)
	api("POST /api/v1/runs/{id}/batches/{batch}/retry", s.retryBatch)
	api("GET /api/v1/runs/{id}/events", s.runEvents)
	api("GET /api/v1/flows", s.listFlows)
	api("POST /api/v1/flows/{name}/activate", s.activateFlow)
	api("POST /api/v1/flows/{name}/deactivate", s.deactivateFlow)
	api("POST /api/v1/flows/{name}/trigger", s.triggerFlow)
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
		s.mux.Handle("GET /metrics", s.opts.Metrics)
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
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
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
	s.mux.ServeHTTP(w, r)
}

// requireAPI authenticates API requests: 401 without an identity, 403 for
// a cookie-authenticated change without the CSRF header.
func (s *Server) requireAPI(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
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
		if how != viaToken && r.Method != http.MethodGet && r.Method != http.MethodHead {
			json := strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type"))), "application/json")
			if !json && !s.auth.checkCSRF(r, r.Header.Get("X-CSRF-Token")) {
				writeError(w, http.StatusForbidden, errorf(codeForbidden, "", "send Content-Type: application/json or a valid X-CSRF-Token"))
				return
			}
		}
		h(w, r, id)
	})
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
