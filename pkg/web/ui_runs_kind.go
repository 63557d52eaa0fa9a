package web

import (
	"net/http"

	"github.com/dripflow/dripflow/pkg/store"
)

// runsKindCookie remembers the kind of runs the runs page lists.
const runsKindCookie = "dripflow_runs_kind"

// runsKind returns the kind of runs the runs page lists: the query's kind
// ("backfill", "flow", or "all" for both), which is then remembered in a
// cookie, else the remembered one. Heartbeat flows make a run every few
// seconds, so an operator who looks for backfills chooses "backfills" once
// rather than on every visit; the page always shows the kind it lists and
// how to list both. Anything else is an *store.ArgumentError for "kind".
func (s *Server) runsKind(w http.ResponseWriter, r *http.Request) (store.Kind, error) {
	v, set := r.URL.Query()["kind"]
	if !set {
		if c, err := r.Cookie(runsKindCookie); err == nil && store.Kind(c.Value).Valid() {
			return store.Kind(c.Value), nil
		}
		return "", nil
	}
	kind := store.Kind(v[0])
	switch {
	case v[0] == "all" || v[0] == "":
		kind = ""
	case !kind.Valid():
		return "", &store.ArgumentError{Field: "kind", Message: `kind must be "backfill", "flow" or "all"`}
	}
	c := &http.Cookie{Name: runsKindCookie, Value: string(kind), Path: s.base + "/runs", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: 365 * 24 * 3600}
	if kind == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
	return kind, nil
}
