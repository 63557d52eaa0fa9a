package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// uiDryRun tries the first batches of a run with the form's params, each
// rolled back, and shows what they would change in a table under the form
// (the page comes back with every value kept). No run is created.
func (s *Server) uiDryRun(w http.ResponseWriter, r *http.Request, q *uiReq) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	n, form, err := parseRunForm(j, q.identity, r.PostForm)
	form.DryRunBatches = strings.TrimSpace(r.PostForm.Get("dry_run_batches"))
	batches := engine.DryRunBatchesDefault
	if err == nil && form.DryRunBatches != "" {
		if batches, err = strconv.Atoi(form.DryRunBatches); err != nil {
			err = &store.ArgumentError{Field: "dry_run_batches", Message: "must be a whole number"}
		}
	}
	if err == nil {
		rep, derr := s.dryRun(r.Context(), n, batches)
		if derr == nil {
			form.DryRun = &rep
			s.renderDefinition(w, r, q, http.StatusOK, j, form)
			return
		}
		err = derr
	}
	status, msg := s.uiError(r, err)
	var ae *store.ArgumentError
	if errors.As(err, &ae) && ae.Field == "dry_run" {
		msg = ae.Message // "invalid dry_run: …" says less than the reason alone
	}
	form.DryRunError = msg
	form.setError(err)
	s.renderDefinition(w, r, q, status, j, form)
}
