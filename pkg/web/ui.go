package web

import "net/http"

// uiRoutes serves the UI. Until the pages exist, / points at the API.
func (s *Server) uiRoutes() {
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.base+"/api/v1/openapi.json", http.StatusFound)
	})
}

// requireUI lets authenticated people through and sends others to log in.
func (s *Server) requireUI(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, how := s.auth.identify(r); how == viaNone {
			http.Redirect(w, r, s.base+"/login?next="+r.URL.Path, http.StatusSeeOther)
			return
		}
		h.ServeHTTP(w, r)
	})
}
