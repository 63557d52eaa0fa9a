package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// Flows defined at runtime: a flow spec (flows.Spec) is created with POST
// /api/v1/flows, replaced by a new version with PUT /api/v1/flows/{name},
// deleted with DELETE and checked without storing anything with POST
// /api/v1/flows/validate. Bodies are JSON, or YAML with Content-Type
// application/yaml; every refused spec is a 422 naming the failing field.
//
// Authorization: creating, changing and deleting flows is ActionFlows (the
// admin role, as activating and triggering them); validating is ActionRead
// (any role: it stores nothing and shows nothing but the spec sent).

// specBody is a spec as PUT and POST read it: the spec's own fields, and
// for PUT an optional if_version (as an If-Match header would say).
type specBody struct {
	flows.Spec
	IfVersion *int64 `json:"if_version,omitempty"`
}

// isYAML says whether a request's Content-Type is one of YAML's.
func isYAML(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch mt {
	case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		return true
	}
	return false
}

// yamlToJSON turns a YAML document (one, a mapping) into the JSON of the
// same fields, so both go through the same strict decoding.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("empty YAML body")
		}
		return nil, &strictError{Status: http.StatusBadRequest, Message: "malformed YAML body: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &strictError{Status: http.StatusUnprocessableEntity, Message: "one flow per request: the body holds a second YAML document"}
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, &strictError{Status: http.StatusUnprocessableEntity, Message: fmt.Sprintf("the body must be a mapping of a flow spec's fields, not %s", yamlKind(doc))}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, &strictError{Status: http.StatusUnprocessableEntity, Message: "the YAML body has values JSON cannot hold (keys must be strings): " + err.Error()}
	}
	return js, nil
}

// jsonKindOf says what JSON value decodes into t.
func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another value"
}

func yamlKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[any]any:
		return "a mapping with keys that are not strings"
	}
	return "a scalar"
}

// readSpec reads a spec body (JSON, or YAML by its Content-Type) strictly:
// malformed JSON or YAML is 400, a wrong key or type 422 naming it, an
// oversized body 413. It does not compile the spec.
func (s *Server) readSpec(w http.ResponseWriter, r *http.Request) (specBody, bool) {
	var sb specBody
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, err)
		return sb, false
	}
	if isYAML(r) {
		if body, err = yamlToJSON(body); err != nil {
			s.writeDecodeError(w, err)
			return sb, false
		}
	} else if err := checkJSONTokens(body); err != nil {
		s.writeDecodeError(w, err)
		return sb, false
	}
	if err := decodeStrict(body, &sb); err != nil {
		// The body is one well-formed JSON value (checked above): what
		// decoding refuses is a value of the wrong shape, such as a
		// transform that is not an object.
		var (
			se  *strictError
			ute *json.UnmarshalTypeError
		)
		switch {
		case errors.As(err, &se) && se.Status == http.StatusBadRequest:
			se.Status, se.Message = http.StatusUnprocessableEntity, strings.TrimPrefix(se.Message, "malformed JSON body: ")
		case errors.As(err, &ute) && ute.Field != "":
			// The spec's fields are promoted from specBody.Spec.
			field := strings.TrimPrefix(ute.Field, "Spec.")
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, field, "%s must be %s, not %s", field, jsonKindOf(ute.Type), ute.Value))
			return sb, false
		}
		s.writeDecodeError(w, err)
		return sb, false
	}
	return sb, true
}

// compiled is a spec that compiles: what would be stored.
type compiled struct {
	spec     flows.Spec
	canon    json.RawMessage // the spec as stored
	defaults json.RawMessage // its run options with the flow defaults
	runtime  string
	delivery string
}

// compileSpec checks a spec against the connector and transform registries
// and returns what would be stored (flows.Spec.Record); an error is a
// *flows.FieldError naming the field.
func compileSpec(sp flows.Spec) (compiled, error) {
	rec, err := sp.Record()
	if err != nil {
		var fe *flows.FieldError
		if errors.As(err, &fe) {
			return compiled{}, fe
		}
		return compiled{}, flows.Errorf("", "%v", err)
	}
	c := compiled{spec: sp, canon: rec.Spec, defaults: rec.Defaults}
	if f, err := sp.Compile(); err == nil {
		c.runtime = f.Runtime.String()
		if f.Sink != nil {
			c.delivery = string(f.Sink.Guarantee())
		}
	}
	return c, nil
}

// flowURL is the API path of a flow.
func (s *Server) flowURL(name string) string { return s.base + "/api/v1/flows/" + name }

// writeFlow answers with a flow as it is now, with its version as ETag.
func (s *Server) writeFlow(w http.ResponseWriter, r *http.Request, status int, name string) {
	fs, err := s.opts.Store.GetFlow(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := s.flowOf(r.Context(), fs)
	if f.Origin == api.OriginSpec {
		w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(f.Version, 10)))
	}
	writeJSON(w, status, f)
}

// getFlow answers one flow with its spec (spec flows) or connector
// configuration (code flows).
func (s *Server) getFlow(w http.ResponseWriter, r *http.Request, _ string) {
	s.writeFlow(w, r, http.StatusOK, r.PathValue("name"))
}

// createFlow stores a new spec flow at version 1 (inactive).
func (s *Server) createFlow(w http.ResponseWriter, r *http.Request, who string) {
	sb, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	// Authorize once the flow's name is known (for the Authorize hook),
	// before saying anything about the spec.
	if !s.allow(w, r, ActionFlows, sb.Name) {
		return
	}
	if sb.IfVersion != nil {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "if_version", "if_version applies to a new version of an existing flow: PUT /api/v1/flows/%s", sb.Name))
		return
	}
	c, err := compileSpec(sb.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	saved, err := s.opts.Store.SaveFlowSpec(r.Context(), store.SaveFlowSpec{
		Name: c.spec.Name, Description: c.spec.Description, Spec: c.canon, Defaults: c.defaults, CreatedBy: who, Create: true,
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			what := "a flow"
			if d, gerr := s.opts.Store.GetDefinition(r.Context(), c.spec.Name); gerr == nil && d.Origin != store.OriginSpec {
				what = "a definition in code"
			}
			writeError(w, http.StatusConflict, errorf(codeConflict, "name", "%s named %q exists already; change a spec flow with PUT /api/v1/flows/%s", what, c.spec.Name, c.spec.Name))
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("flow created", zap.String("definition", saved.Name), zap.Int64("version", saved.Version), zap.String("by", who))
	w.Header().Set("Location", s.flowURL(saved.Name))
	s.writeFlow(w, r, http.StatusCreated, saved.Name)
}

// ifMatch reads the version an If-Match header asks for: "3", W/"3" or 3;
// "*" or none is 0 (any version).
func ifMatch(r *http.Request) (int64, *api.ErrorDetail) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		d := errorf(codeInvalid, "If-Match", "If-Match must be a flow version such as \"3\" (its ETag), got %q", r.Header.Get("If-Match"))
		return 0, &d
	}
	return n, nil
}

// specDefinition returns the stored definition of a spec flow: 404 for an
// unknown flow and 409 for a code flow, which is read-only here.
func (s *Server) specDefinition(ctx context.Context, name string) (store.Definition, *api.ErrorDetail, int) {
	d, err := s.opts.Store.GetDefinition(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e := errorf(codeNotFound, "", "no flow named %q (create it with POST /api/v1/flows)", name)
		return d, &e, http.StatusNotFound
	case err != nil:
		return d, nil, 0
	case d.Kind != store.KindFlow:
		e := errorf(codeConflict, "", "%q is a %s, not a flow", name, d.Kind)
		return d, &e, http.StatusConflict
	case d.Origin != store.OriginSpec:
		e := errorf(codeConflict, "", "flow %q is defined in code and is read-only here: change its Go definition", name)
		return d, &e, http.StatusConflict
	}
	return d, nil, 0
}

// updateFlow stores a new version of a spec flow. With an If-Match header
// or if_version it must still be at that version (409 otherwise).
func (s *Server) updateFlow(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	sb, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	if sb.Name == "" {
		sb.Name = name
	} else if sb.Name != name {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "name", "name %q differs from the flow in the path, %q: a flow cannot be renamed", sb.Name, name))
		return
	}
	want, d := ifMatch(r)
	if d != nil {
		writeError(w, http.StatusUnprocessableEntity, *d)
		return
	}
	if sb.IfVersion != nil {
		switch {
		case *sb.IfVersion < 1:
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "if_version", "if_version must be a version (1 or more), got %d", *sb.IfVersion))
			return
		case want != 0 && want != *sb.IfVersion:
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "if_version", "if_version %d and If-Match %d disagree", *sb.IfVersion, want))
			return
		}
		want = *sb.IfVersion
	}
	c, err := compileSpec(sb.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, e, status := s.specDefinition(r.Context(), name); e != nil {
		writeError(w, status, *e)
		return
	}
	saved, err := s.opts.Store.SaveFlowSpec(r.Context(), store.SaveFlowSpec{
		Name: name, Description: c.spec.Description, Spec: c.canon, Defaults: c.defaults, CreatedBy: who, IfVersion: want,
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) && want > 0 {
			now := "another version"
			if cur, gerr := s.opts.Store.GetDefinition(r.Context(), name); gerr == nil {
				now = "version " + strconv.FormatInt(cur.Version, 10)
			}
			writeError(w, http.StatusConflict, errorf(codeConflict, "if_version", "flow %q is at %s, not %d: it changed since you read it; fetch it and apply your change again", name, now, want))
			return
		}
		if _, e, status := s.specDefinition(r.Context(), name); e != nil {
			// Deleted, or replaced by a code definition, meanwhile.
			writeError(w, status, *e)
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("flow changed", zap.String("definition", name), zap.Int64("version", saved.Version), zap.String("by", who))
	s.writeFlow(w, r, http.StatusOK, name)
}

// deleteFlow removes a spec flow (its versions and runs stay as history),
// unless a run of it is live.
func (s *Server) deleteFlow(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	if _, e, status := s.specDefinition(r.Context(), name); e != nil {
		writeError(w, status, *e)
		return
	}
	if err := s.opts.Store.DeleteFlowSpec(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("flow deleted", zap.String("definition", name), zap.String("by", who))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// validateFlow compiles a spec and stores nothing: 200 {"valid": true, …}
// or 422 naming the field.
func (s *Server) validateFlow(w http.ResponseWriter, r *http.Request, _ string) {
	sb, ok := s.readSpec(w, r)
	if !ok {
		return
	}
	if sb.IfVersion != nil {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "if_version", "if_version is not a field of a flow spec"))
		return
	}
	c, err := compileSpec(sb.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.FlowValidation{Valid: true, Name: c.spec.Name, Runtime: c.runtime, Delivery: c.delivery, Spec: c.canon})
}

func flowVersionOf(fs store.FlowSpec) api.FlowVersion {
	return api.FlowVersion{Name: fs.Name, Version: fs.Version, Description: fs.Description, Spec: fs.Spec,
		CreatedBy: fs.CreatedBy, CreatedAt: fs.CreatedAt}
}

// listFlowVersions lists a spec flow's versions, newest first (also of a
// deleted flow; none for a code flow).
func (s *Server) listFlowVersions(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	vs, err := s.opts.Store.ListFlowSpecs(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(vs) == 0 {
		if _, err := s.opts.Store.GetDefinition(r.Context(), name); errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, errorf(codeNotFound, "", "no flow named %q", name))
			return
		} else if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	out := api.Page[api.FlowVersion]{Items: make([]api.FlowVersion, 0, len(vs))}
	for _, v := range vs {
		out.Items = append(out.Items, flowVersionOf(v))
	}
	writeJSON(w, http.StatusOK, out)
}

// getFlowVersion answers one version of a spec flow.
func (s *Server) getFlowVersion(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	v, err := pathID(r, "version")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fs, err := s.opts.Store.GetFlowSpec(r.Context(), name, v)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, errorf(codeNotFound, "", "flow %q has no version %d", name, v))
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, flowVersionOf(fs))
}

// specRuntime is the runtime a stored spec shows, as Runtime.String writes
// it ("" when the spec no longer parses).
func specRuntime(spec json.RawMessage) string {
	sp, err := flows.ParseSpec(spec)
	if err != nil {
		return ""
	}
	rt, err := flows.ParseRuntime(sp.Runtime)
	if err != nil {
		return sp.Runtime
	}
	return rt.String()
}
