package web

import (
	"bytes"
	"html"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// backLinkStyle places the link back to dripflow in the middle of
// asynqmon's top bar, where it covers none of asynqmon's controls.
const backLinkStyle = "position:fixed;top:14px;left:50%;transform:translateX(-50%);z-index:2147483000;" +
	"padding:6px 14px;border-radius:999px;background:#fff;color:#1e293b;font:600 14px/1.2 system-ui,sans-serif;" +
	"text-decoration:none;box-shadow:0 1px 4px rgba(0,0,0,.35)"

// withBackLink adds to asynqmon's page (its index.html, which it serves for
// every path that is not a file or its API) a fixed "← dripflow" link back
// to the runs list: asynqmon itself has no way back. The link is served
// with the page, from our origin; nothing else changes.
func (s *Server) withBackLink(h http.Handler) http.Handler {
	link := []byte(`<a id="dripflow-back" href="` + html.EscapeString(s.base+"/runs") + `" title="Back to dripflow's runs" style="` +
		backLinkStyle + `">&larr; dripflow</a>`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead ||
			strings.HasPrefix(r.URL.Path, "/monitoring/api/") || path.Ext(r.URL.Path) != "" {
			h.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if i := bytes.LastIndex(body, []byte("</body>")); i >= 0 && strings.HasPrefix(rec.header.Get("Content-Type"), "text/html") {
			body = append(body[:i:i], append(link, body[i:]...)...)
		}
		for k, vs := range rec.header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.code)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// bufferedResponse keeps a response to change it before it is sent.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.code, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	if b.header.Get("Content-Type") == "" {
		b.header.Set("Content-Type", http.DetectContentType(p))
	}
	return b.body.Write(p)
}
