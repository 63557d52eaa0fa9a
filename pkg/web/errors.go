package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

const (
	codeBadRequest   = api.CodeBadRequest
	codeUnauthorized = api.CodeUnauthorized
	codeForbidden    = api.CodeForbidden
	codeNotFound     = api.CodeNotFound
	codeConflict     = api.CodeConflict
	codeTooLarge     = api.CodeTooLarge
	codeInvalid      = api.CodeInvalid
	codeInternal     = api.CodeInternal
)

func errorf(code, field, format string, args ...any) api.ErrorDetail {
	return api.ErrorDetail{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, d api.ErrorDetail) {
	writeJSON(w, status, api.Error{Error: d})
}

// fail maps an error to its status and a message safe to show: store and
// params errors say what is wrong with the input; anything else is logged
// and reported as an internal error, never with SQL or a stack.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pe *params.Error
		ae *store.ArgumentError
		te *store.TransitionError
		me *http.MaxBytesError
		fe *flows.FieldError
		be *store.FlowBusyError
	)
	switch {
	case errors.As(err, &me):
		writeError(w, http.StatusRequestEntityTooLarge, errorf(codeTooLarge, "", "request body is larger than %d bytes", me.Limit))
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, api.ErrorDetail{Code: codeInvalid, Field: fe.Field, Message: fe.Error()})
	case errors.As(err, &be):
		// One run of a flow at a time: say which run holds the flow.
		writeError(w, http.StatusConflict, api.ErrorDetail{Code: codeConflict, Message: be.Error(), RunID: strconv.FormatInt(be.RunID, 10)})
	case errors.As(err, &pe):
		field := "params"
		if pe.Field != "" {
			field = "params." + pe.Field
		}
		writeError(w, http.StatusUnprocessableEntity, api.ErrorDetail{Code: codeInvalid, Field: field, Message: pe.Error()})
	case errors.As(err, &ae):
		writeError(w, http.StatusUnprocessableEntity, api.ErrorDetail{Code: codeInvalid, Field: ae.Field, Message: ae.Error()})
	case errors.As(err, &te):
		writeError(w, http.StatusConflict, errorf(codeConflict, "", "%s", te.Error()))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, errorf(codeNotFound, "", "%s", publicMessage(err)))
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, errorf(codeConflict, "", "%s", publicMessage(err)))
	default:
		s.log.Error("request failed", zapErr(err), zapPath(r))
		writeError(w, http.StatusInternalServerError, errorf(codeInternal, "", "internal error; the server log has the details"))
	}
}

// publicMessage is the message of a not-found or conflict error: the store's
// wrapping names what was being done and carries no SQL.
func publicMessage(err error) string { return err.Error() }
