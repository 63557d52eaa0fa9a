package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"

	// Schedule-for-later and time params take IANA zone names; embedding the
	// zone database makes them work in minimal containers without one.
	_ "time/tzdata"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// The UI is server-rendered: every page works without JavaScript, and
// static/app.js only adds confirmations, live progress over server-sent
// events, count previews and local times. The CSP forbids inline scripts
// and styles, so every page links its JS and CSS from /static.

// ui holds the parsed templates and static file hashes of one Server.
type ui struct {
	pages      map[string]*template.Template
	staticHash map[string]string
	static     http.Handler

	mu      sync.Mutex
	stats   *weekStats // cached for statsCacheTTL
	statsAt time.Time
}

// uiRoutes serves the UI's pages, forms and static files.
func (s *Server) uiRoutes() {
	s.ui = s.newUI()
	page := func(pattern string, h func(http.ResponseWriter, *http.Request, *uiReq)) {
		action := ActionRead
		switch {
		case !strings.HasPrefix(pattern, "POST "), strings.HasSuffix(pattern, "/preview"):
		case strings.HasPrefix(pattern, "POST /flows/"):
			action = ActionFlows
		case strings.HasSuffix(pattern, "/runs"), strings.HasSuffix(pattern, "/again"), strings.HasSuffix(pattern, "/dry-run"):
			action = ActionStart
		default:
			action = ActionControl
		}
		s.mux.Handle(pattern, s.requireUI(s.uiHandler(action, h)))
	}
	s.mux.Handle("GET /static/", s.ui.static)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)

	s.mux.Handle("GET /{$}", s.requireUI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.base+"/runs", http.StatusFound)
	})))
	page("GET /runs", s.runsPage)
	page("GET /runs/{id}", s.runPage)
	page("GET /runs/{id}/throughput.svg", s.throughputSVG)
	page("POST /runs/{id}/pause", s.uiPause)
	page("POST /runs/{id}/resume", s.uiResume)
	page("POST /runs/{id}/start", s.uiStart)
	page("POST /runs/{id}/reschedule", s.uiReschedule)
	page("GET /workers", s.workersPage)
	page("POST /runs/{id}/cancel", s.uiCancel)
	page("POST /runs/{id}/retry", s.uiRetry)
	page("POST /runs/{id}/again", s.uiRunAgain)
	page("POST /runs/{id}/batches/{batch}/retry", s.uiRetryBatch)
	page("GET /definitions", s.definitionsPage)
	page("GET /definitions/{name}", s.definitionPage)
	page("POST /definitions/{name}/preview", s.uiPreview)
	page("POST /definitions/{name}/runs", s.uiCreateRun)
	page("POST /definitions/{name}/dry-run", s.uiDryRun) // ui_dryrun.go
	page("GET /flows", s.flowsPage)
	page("GET /flows/{name}", s.flowPage)
	page("POST /flows/{name}/activate", s.uiActivateFlow)
	page("POST /flows/{name}/deactivate", s.uiDeactivateFlow)
	page("POST /flows/{name}/trigger", s.uiTriggerFlow)
	s.flowFormRoutes()
	// Anything else is a UI page that does not exist.
	page("/", func(w http.ResponseWriter, r *http.Request, q *uiReq) {
		s.uiFail(w, r, q, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
}

func (s *Server) newUI() *ui {
	u := &ui{pages: map[string]*template.Template{}, staticHash: map[string]string{}}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(sub, p)
		sum := sha256.Sum256(b)
		u.staticHash[p] = hex.EncodeToString(sum[:6])
		return nil
	})
	files := http.FileServerFS(sub)
	u.static = http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Versioned URLs (?v=<hash of the content>) never change, so they
		// may be cached for good; anything else is revalidated.
		if v := r.URL.Query().Get("v"); v != "" && v == u.staticHash[r.URL.Path] {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))

	funcs := s.templateFuncs(u)
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html"))
	entries, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(path.Base(e), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t := template.Must(base.Clone())
		u.pages[name] = template.Must(t.ParseFS(templateFS, e))
	}
	return u
}

// uiReq is what a UI handler knows about the request.
type uiReq struct {
	identity string
	how      via
}

// page is what every template gets.
type page struct {
	Title      string
	Nav        string
	Base       string
	Identity   string
	CanLogout  bool
	CSRF       string
	Flash      *flash
	Monitoring bool
	Queue      string
	// Can says which actions the identity's role allows, so pages offer
	// only those.
	Can  can
	Data any
}

// uiHandler checks the CSRF token of every state-changing request, and
// that the identity's role allows the action.
func (s *Server) uiHandler(action Action, h func(http.ResponseWriter, *http.Request, *uiReq)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, how := s.auth.identify(r)
		q := &uiReq{identity: id, how: how}
		if d := checkRequestText(r); d != nil {
			s.uiFail(w, r, q, http.StatusUnprocessableEntity, d.Message+".")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err := r.ParseForm()
			if err == nil {
				err = parseUploads(r)
			}
			if errors.Is(err, errUploadTooLarge) {
				s.uiFail(w, r, q, http.StatusRequestEntityTooLarge, strings.TrimPrefix(err.Error(), errUploadTooLarge.Error()+": ")+".")
				return
			}
			if err != nil {
				var me *http.MaxBytesError
				if errors.As(err, &me) {
					s.uiFail(w, r, q, http.StatusRequestEntityTooLarge, "The form is too large.")
					return
				}
				s.uiFail(w, r, q, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !s.checkFormCSRF(r, q, r.PostFormValue("csrf")) {
				s.uiFail(w, r, q, http.StatusForbidden, "The form's security token is missing or has expired. Go back, reload the page and try again.")
				return
			}
			if d := checkQuery(r.PostForm); d != nil {
				s.uiFail(w, r, q, http.StatusUnprocessableEntity, d.Message+".")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		r = r.WithContext(context.WithValue(r.Context(), whoKey{}, who{id, how}))
		if !s.allow(w, r, action, s.subjectOf(r)) {
			return
		}
		h(w, r, q)
	})
}

// requireUI lets authenticated people through and sends others to log in.
func (s *Server) requireUI(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, how := s.auth.identify(r); how == viaNone {
			target := s.base + "/login"
			// After logging in, a GET comes back to where it was going; a
			// form post cannot be replayed, so it starts over.
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				if next := r.URL.RequestURI(); next != "/" {
					target += "?next=" + urlQueryEscape(next)
				}
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// withBasePath gives h the request's full path again: ServeHTTP strips the
// base path, but asynqmon, mounted at {base}/monitoring, routes on it.
func (s *Server) withBasePath(h http.Handler) http.Handler {
	if s.base == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = s.base + r.URL.Path
		r2.URL.RawPath = ""
		h.ServeHTTP(w, r2)
	})
}

// newPage fills what every page shows.
func (s *Server) newPage(w http.ResponseWriter, r *http.Request, q *uiReq, title, nav string) *page {
	p := &page{
		Title: title, Nav: nav, Base: s.base,
		Monitoring: s.opts.RedisURL != "", Queue: s.opts.Queue,
		Flash: s.takeFlash(w, r),
	}
	if q != nil {
		p.Identity = q.identity
		p.CanLogout = q.how == viaSession
		p.CSRF = s.formCSRF(r, q)
		if q.how != viaNone {
			p.Can = s.auth.can(r, q.identity, q.how)
		}
	}
	return p
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.ui.pages[name]
	if !ok {
		panic("web: no template " + name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", zap.String("page", name), zap.Error(err), zapPath(r))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// uiFail renders an error page.
func (s *Server) uiFail(w http.ResponseWriter, r *http.Request, q *uiReq, status int, msg string) {
	p := s.newPage(w, r, q, http.StatusText(status), "")
	p.Data = struct {
		Status  int
		Message string
	}{status, msg}
	s.render(w, r, status, "error", p)
}

// uiError maps an error to a status and a message safe to show: store and
// params errors say what is wrong; anything else is logged and reported as
// an internal error, never with SQL or a stack.
func (s *Server) uiError(r *http.Request, err error) (int, string) {
	var (
		pe *params.Error
		ae *store.ArgumentError
		te *store.TransitionError
		me *http.MaxBytesError
	)
	switch {
	case errors.As(err, &me):
		return http.StatusRequestEntityTooLarge, "The form is too large."
	case errors.As(err, &pe):
		return http.StatusUnprocessableEntity, pe.Error()
	case errors.As(err, &ae):
		return http.StatusUnprocessableEntity, ae.Error()
	case errors.As(err, &te):
		return http.StatusConflict, te.Error()
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, publicMessage(err)
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, publicMessage(err)
	}
	s.log.Error("UI request failed", zapErr(err), zapPath(r))
	return http.StatusInternalServerError, "Internal error; the server log has the details."
}

// uiFailErr renders an error page for err.
func (s *Server) uiFailErr(w http.ResponseWriter, r *http.Request, q *uiReq, err error) {
	status, msg := s.uiError(r, err)
	s.uiFail(w, r, q, status, msg)
}

// redirect answers a form post with a redirect (post/redirect/get) to a
// path under the base, carrying a flash message.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to string, f *flash) {
	if f != nil {
		s.setFlash(w, *f)
	}
	http.Redirect(w, r, s.base+to, http.StatusSeeOther)
}
