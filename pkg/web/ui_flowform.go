package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// The flow form creates and edits flows stored as specs (/flows/new,
// /flows/{name}/edit). It is built from the connector registry: a kind
// select per side and, for every kind, its settings from flows.Schema.
// Every button posts the whole form back (name "op"), so it works without
// JavaScript; app.js only shows the selected kinds' settings. Validating,
// previewing and reordering transforms re-render the form with what was
// typed; only "save" stores anything.

// actionEditFlows is the action creating or editing a spec flow needs: the
// one activating or triggering a flow needs (admin), since a spec chooses
// what a flow reads and where it writes.
const actionEditFlows = ActionFlows

// flowFormRoutes serves the flow form's pages.
func (s *Server) flowFormRoutes() {
	h := func(pattern string, fn func(http.ResponseWriter, *http.Request, *uiReq)) {
		s.mux.Handle(pattern, s.requireUI(s.uiHandler(actionEditFlows, fn)))
	}
	h("GET /flows/new", s.newFlowPage)
	h("POST /flows/new", s.postFlowForm)
	h("GET /flows/{name}/edit", s.editFlowPage)
	h("POST /flows/{name}/edit", s.postFlowForm)
}

// specOptionFields are the spec's run options the form offers, with the
// field names a *flows.FieldError uses.
var specOptionFields = []struct{ Field, Label, Kind, Help string }{
	{"options.batch_size", "Batch size", "integer", "records per batch; default 1000"},
	{"options.max_in_flight", "Max in flight", "integer", "batches processed at once; default 4"},
	{"options.max_attempts", "Max attempts", "integer", "attempts per batch; default 5"},
	{"options.rows_per_second", "Rows per second", "integer", "0 means unlimited"},
	{"options.sleep", "Sleep between batches", "duration", "e.g. 250ms"},
	{"options.batch_timeout", "Batch timeout", "duration", "e.g. 10m (the default)"},
	{"options.error_budget", "Error budget", "integer", "failed batches a run tolerates"},
	{"options.target_batch_time", "Target batch time", "duration", "adaptive batch size, e.g. 200ms; empty: off"},
	{"options.min_batch_size", "Min batch size", "integer", "adaptive runs; default batch size / 100"},
	{"options.max_batch_size", "Max batch size", "integer", "adaptive runs; default batch size × 100"},
	{"max_batches_per_run", "Max batches per run", "integer", "for stream and queue sources; default 100"},
}

// transformHints are example settings of the built-in transforms, shown
// as placeholders.
var transformHints = map[string]string{
	"select": `{"fields": ["id", "email"]}`,
	"drop":   `{"fields": ["password_hash"]}`,
	"rename": `{"fields": {"id": "user_id"}}`,
	"set":    `{"field": "source", "value": "crm"}`,
	"cast":   `{"fields": {"age": "int", "at": "time"}}`,
	"filter": `{"where": "active == true and age >= 18"}`,
	"dedupe": `{"key": ["email"]}`,
}

// flowForm is the form's state: what was typed (as typed), where it is
// wrong, and what a preview found.
type flowForm struct {
	New     bool
	Name    string
	Version int64 // the version being edited; 0 for a new flow
	Desc    string
	// Values are the connector settings' inputs by input name
	// ("source.sql.table"), for every kind, so switching kinds loses
	// nothing.
	Values     map[string]string
	SourceKind string
	SinkKind   string
	Transforms []transformRow
	Runtime    string // once, every or cron
	Every      string
	Cron       string
	Options    map[string]string // by field ("options.batch_size")
	SpecText   string            // a pasted YAML or JSON spec
	// Errors are messages by field, as a *flows.FieldError names them
	// ("sink.key", "transforms[1]"); Problem is the summary on top.
	Errors  map[string]string
	Problem string
	Notice  string // a success note (valid, loaded)
	Preview *specPreview
	// Current is the stored spec (YAML) when saving met a conflict.
	Current string
	// SpecYAML is the form's spec as YAML once it compiled.
	SpecYAML string
	// Webhooks are the spec's webhooks as JSON, which the form carries
	// unchanged (they are edited in YAML), so saving keeps them.
	Webhooks string
	// HealthChecks are the spec's health checks as JSON, carried the same
	// way.
	HealthChecks string
}

type transformRow struct {
	Type, Name, Settings string
}

// runtimeString writes the form's runtime as a spec does.
func (f *flowForm) runtimeString() string {
	switch f.Runtime {
	case "every":
		return "every " + strings.TrimSpace(f.Every)
	case "cron":
		return "cron " + strings.TrimSpace(f.Cron)
	}
	return "once"
}

// setErr records the first message for field.
func (f *flowForm) setErr(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if _, ok := f.Errors[field]; !ok {
		f.Errors[field] = msg
	}
}

// readFlowForm reads the posted form.
func readFlowForm(r *http.Request) *flowForm {
	pf := r.PostForm
	f := &flowForm{
		Name: strings.TrimSpace(pf.Get("name")), Desc: strings.TrimSpace(pf.Get("description")),
		SourceKind: pf.Get("source.kind"), SinkKind: pf.Get("sink.kind"),
		Runtime: pf.Get("runtime.mode"), Every: strings.TrimSpace(pf.Get("runtime.every")),
		Cron: strings.TrimSpace(pf.Get("runtime.cron")), SpecText: pf.Get("spec_text"),
		Values: map[string]string{}, Options: map[string]string{},
	}
	f.Version, _ = strconv.ParseInt(pf.Get("version"), 10, 64)
	f.Webhooks = pf.Get("webhooks")
	f.HealthChecks = pf.Get("health_checks")
	for k, v := range pf {
		if (strings.HasPrefix(k, "source.") || strings.HasPrefix(k, "sink.")) && !strings.HasSuffix(k, ".kind") && len(v) > 0 {
			f.Values[k] = v[0]
		}
	}
	for _, o := range specOptionFields {
		f.Options[o.Field] = strings.TrimSpace(pf.Get(o.Field))
	}
	for i := 0; ; i++ {
		p := fmt.Sprintf("transforms.%d.", i)
		if _, ok := pf[p+"type"]; !ok {
			break
		}
		f.Transforms = append(f.Transforms, transformRow{
			Type: pf.Get(p + "type"), Name: strings.TrimSpace(pf.Get(p + "name")), Settings: strings.TrimSpace(pf.Get(p + "settings")),
		})
	}
	return f
}

// connectorSettings turns the inputs of side's chosen kind into settings
// JSON, by each setting's schema type; a value that does not parse is an
// error on "<side>.<setting>".
func (f *flowForm) connectorSettings(side, kind string) json.RawMessage {
	cfg := zeroConfig(side, kind)
	if cfg == nil {
		return json.RawMessage("{}")
	}
	out := map[string]any{}
	for _, st := range flows.Schema(cfg) {
		raw := f.Values[side+"."+kind+"."+st.Name]
		if st.Type != "string" {
			raw = strings.TrimSpace(raw)
		}
		if raw == "" {
			continue
		}
		field := side + "." + st.Name
		switch st.Type {
		case "integer":
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				f.setErr(field, fmt.Sprintf("must be a whole number, got %q", raw))
				continue
			}
			out[st.Name] = n
		case "number":
			if _, err := strconv.ParseFloat(raw, 64); err != nil {
				f.setErr(field, fmt.Sprintf("must be a number, got %q", raw))
				continue
			}
			out[st.Name] = json.Number(raw)
		case "boolean":
			out[st.Name] = raw == "true" || raw == "on"
		case "list":
			if !strings.HasPrefix(raw, "[") {
				// A plain list of words: "id, email".
				var items []string
				for _, it := range strings.Split(raw, ",") {
					if it = strings.TrimSpace(it); it != "" {
						items = append(items, it)
					}
				}
				out[st.Name] = items
				continue
			}
			fallthrough
		case "object":
			var v any
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil || dec.More() {
				f.setErr(field, "must be JSON ("+exampleJSON(st.Type)+")")
				continue
			}
			out[st.Name] = v
		default:
			out[st.Name] = raw
		}
	}
	b, _ := json.Marshal(out)
	return b
}

func exampleJSON(typ string) string {
	if typ == "list" {
		return `a list such as ["a", "b"], or words separated by commas`
	}
	return `an object such as {"key": "value"}`
}

// zeroConfig is an empty configuration of side ("source" or "sink") of a
// connector kind, nil when there is none.
func zeroConfig(side, kind string) any {
	for _, c := range flows.Connectors() {
		if c.Kind != kind {
			continue
		}
		if side == "source" && c.Source != nil {
			return c.Source()
		}
		if side == "sink" && c.Sink != nil {
			return c.Sink()
		}
	}
	return nil
}

// spec builds the spec the form describes; what does not parse is in
// f.Errors.
func (f *flowForm) spec() flows.Spec {
	sp := flows.Spec{
		Name: f.Name, Description: f.Desc, Runtime: f.runtimeString(),
		Source: flows.ConnectorConfig{Kind: f.SourceKind, Settings: f.connectorSettings("source", f.SourceKind)},
		Sink:   flows.ConnectorConfig{Kind: f.SinkKind, Settings: f.connectorSettings("sink", f.SinkKind)},
	}
	if f.Webhooks != "" {
		if err := json.Unmarshal([]byte(f.Webhooks), &sp.Webhooks); err != nil {
			f.setErr("webhooks", "the flow's webhooks did not come back from the form; edit them in YAML")
		}
	}
	if f.HealthChecks != "" {
		if err := json.Unmarshal([]byte(f.HealthChecks), &sp.Options.HealthChecks); err != nil {
			f.setErr("options.health_checks", "the flow's health checks did not come back from the form; edit them in YAML")
		}
	}
	if f.Runtime == "every" && f.Every == "" {
		f.setErr("runtime", "give the interval, e.g. 30s or 5m")
	}
	if f.Runtime == "cron" && f.Cron == "" {
		f.setErr("runtime", "give a cron spec, e.g. */5 * * * * or @hourly")
	}
	for _, o := range specOptionFields {
		raw := f.Options[o.Field]
		if raw == "" {
			continue
		}
		var n int
		if o.Kind == "integer" {
			v, err := strconv.Atoi(raw)
			if err != nil {
				f.setErr(o.Field, fmt.Sprintf("must be a whole number, got %q", raw))
				continue
			}
			n = v
		}
		switch o.Field {
		case "options.batch_size":
			sp.Options.BatchSize = n
		case "options.max_in_flight":
			sp.Options.MaxInFlight = n
		case "options.max_attempts":
			sp.Options.MaxAttempts = n
		case "options.rows_per_second":
			sp.Options.RowsPerSecond = n
		case "options.error_budget":
			sp.Options.ErrorBudget = n
		case "options.sleep":
			sp.Options.Sleep = raw
		case "options.batch_timeout":
			sp.Options.BatchTimeout = raw
		case "options.target_batch_time":
			sp.Options.TargetBatchTime = raw
		case "options.min_batch_size":
			sp.Options.MinBatchSize = n
		case "options.max_batch_size":
			sp.Options.MaxBatchSize = n
		case "max_batches_per_run":
			sp.MaxBatchesPerRun = n
		}
	}
	for i, t := range f.Transforms {
		ts := flows.TransformSpec{Type: t.Type, Name: t.Name, Settings: map[string]json.RawMessage{}}
		if t.Settings != "" {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(t.Settings), &m); err != nil || m == nil {
				f.setErr(fmt.Sprintf("transforms[%d]", i), `settings must be a JSON object, such as `+cmpOr(transformHints[t.Type], `{"fields": ["id"]}`))
			}
			for k, v := range m {
				if k == "type" || k == "name" {
					f.setErr(fmt.Sprintf("transforms[%d]", i), fmt.Sprintf("%q goes in its own input, not in the settings", k))
					continue
				}
				ts.Settings[k] = v
			}
		}
		sp.Transforms = append(sp.Transforms, ts)
	}
	return sp
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// check builds and compiles the form's spec. It reports false, with the
// messages in f, when anything is wrong.
func (f *flowForm) check() (flows.Spec, flows.Flow, bool) {
	sp := f.spec()
	if len(f.Errors) > 0 {
		f.Problem = "The flow has problems; see the marked fields."
		return sp, flows.Flow{}, false
	}
	fl, err := sp.Compile()
	if err == nil {
		// What registering it would check too (as the API does).
		_, err = flows.New(fl)
	}
	if err != nil {
		var fe *flows.FieldError
		if errors.As(err, &fe) {
			field, msg := errorField(fe.Field), fe.Message
			if rest := strings.TrimPrefix(strings.TrimPrefix(fe.Field, field), "."); rest != "" {
				msg = rest + ": " + msg
			}
			f.setErr(field, msg)
			f.Problem = "The flow is not valid: " + fe.Error()
		} else {
			f.Problem = "The flow is not valid: " + err.Error()
		}
		return sp, flows.Flow{}, false
	}
	if f.New && f.Name == "new" {
		f.setErr("name", `"new" is taken by the page that creates flows; choose another name`)
		f.Problem = `The flow is not valid: name: "new" is reserved.`
		return sp, flows.Flow{}, false
	}
	if y, err := sp.YAML(); err == nil {
		f.SpecYAML = string(y)
	}
	return sp, fl, true
}

var transformField = regexp.MustCompile(`^transforms\[(\d+)\]`)

// errorField is where the form shows a *flows.FieldError's field: a
// transform's errors on its row, runtime and options as named,
// connector settings by "<side>.<setting>".
func errorField(field string) string {
	if m := transformField.FindString(field); m != "" {
		return m
	}
	return field
}

// formOfSpec fills a form from a stored or pasted spec. Settings the
// connector's schema does not know are reported, not dropped silently.
func formOfSpec(sp flows.Spec, version int64) *flowForm {
	f := &flowForm{
		Name: sp.Name, Desc: sp.Description, Version: version,
		SourceKind: sp.Source.Kind, SinkKind: sp.Sink.Kind,
		Values: map[string]string{}, Options: map[string]string{},
	}
	if len(sp.Webhooks) > 0 {
		js, _ := json.Marshal(sp.Webhooks)
		f.Webhooks = string(js)
	}
	if len(sp.Options.HealthChecks) > 0 {
		js, _ := json.Marshal(sp.Options.HealthChecks)
		f.HealthChecks = string(js)
	}
	for _, side := range []struct {
		name string
		cc   flows.ConnectorConfig
	}{{"source", sp.Source}, {"sink", sp.Sink}} {
		var m map[string]json.RawMessage
		if len(side.cc.Settings) > 0 && json.Unmarshal(side.cc.Settings, &m) != nil {
			f.setErr(side.name+".kind", "its settings are not a JSON object")
			continue
		}
		known := map[string]bool{}
		if cfg := zeroConfig(side.name, side.cc.Kind); cfg != nil {
			for _, st := range flows.Schema(cfg) {
				known[st.Name] = true
			}
		}
		for k, raw := range m {
			if !known[k] {
				f.setErr(side.name+"."+k, fmt.Sprintf("is not a setting of %s connector %q; it was left out", side.name, side.cc.Kind))
				continue
			}
			f.Values[side.name+"."+side.cc.Kind+"."+k] = inputValue(raw)
		}
	}
	rt := strings.TrimSpace(sp.Runtime)
	switch {
	case rt == "" || rt == "once":
		f.Runtime = "once"
	case strings.HasPrefix(rt, "every ") || strings.HasPrefix(rt, "heartbeat "):
		f.Runtime = "every"
		_, f.Every, _ = strings.Cut(rt, " ")
		f.Every = strings.TrimSpace(f.Every)
	default:
		f.Runtime = "cron"
		f.Cron = strings.TrimSpace(strings.TrimPrefix(rt, "cron "))
	}
	o := sp.Options
	for field, n := range map[string]int{"options.batch_size": o.BatchSize, "options.max_in_flight": o.MaxInFlight,
		"options.max_attempts": o.MaxAttempts, "options.rows_per_second": o.RowsPerSecond,
		"options.error_budget": o.ErrorBudget, "max_batches_per_run": sp.MaxBatchesPerRun,
		"options.min_batch_size": o.MinBatchSize, "options.max_batch_size": o.MaxBatchSize} {
		if n != 0 {
			f.Options[field] = strconv.Itoa(n)
		}
	}
	f.Options["options.sleep"], f.Options["options.batch_timeout"] = o.Sleep, o.BatchTimeout
	f.Options["options.target_batch_time"] = o.TargetBatchTime
	for _, t := range sp.Transforms {
		row := transformRow{Type: t.Type, Name: t.Name}
		if len(t.Settings) > 0 {
			b, _ := json.Marshal(t.Settings)
			row.Settings = string(b)
		}
		f.Transforms = append(f.Transforms, row)
	}
	return f
}

// inputValue is how a setting's JSON value is typed into its input:
// strings bare, anything else as JSON.
func inputValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}

// parsePastedSpec reads a spec pasted as JSON or YAML.
func parsePastedSpec(text string) (flows.Spec, error) {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "{") {
		return flows.ParseSpec([]byte(t))
	}
	return flows.ParseSpecYAML([]byte(t))
}

func (s *Server) newFlowPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	f := &flowForm{New: true, Runtime: "once", Values: map[string]string{}, Options: map[string]string{}}
	// Sensible first choices: the first source and sink kinds.
	f.SourceKind, f.SinkKind = firstKind("source"), firstKind("sink")
	s.renderFlowForm(w, r, q, http.StatusOK, f)
}

func firstKind(side string) string {
	for _, c := range flows.Connectors() {
		if (side == "source" && c.Source != nil) || (side == "sink" && c.Sink != nil) {
			return c.Kind
		}
	}
	return ""
}

// loadSpecFlow returns the stored latest spec of a spec flow; a code
// flow is a 409 page saying it is read-only.
func (s *Server) loadSpecFlow(w http.ResponseWriter, r *http.Request, q *uiReq, name string) (store.FlowSpec, bool) {
	d, err := s.opts.Store.GetDefinition(r.Context(), name)
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return store.FlowSpec{}, false
	}
	if d.Kind != store.KindFlow || d.Origin != store.OriginSpec {
		what := "Flow"
		if d.Kind != store.KindFlow {
			what = "Definition"
		}
		s.uiFail(w, r, q, http.StatusConflict, fmt.Sprintf("%s %s is defined in code, read-only: change it in the application's Go code.", what, name))
		return store.FlowSpec{}, false
	}
	fs, err := s.opts.Store.GetFlowSpec(r.Context(), name, 0)
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return store.FlowSpec{}, false
	}
	return fs, true
}

func (s *Server) editFlowPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	name := r.PathValue("name")
	fs, ok := s.loadSpecFlow(w, r, q, name)
	if !ok {
		return
	}
	sp, err := flows.ParseSpec(fs.Spec)
	var f *flowForm
	if err != nil {
		f = &flowForm{Name: name, Version: fs.Version, Runtime: "once", Values: map[string]string{}, Options: map[string]string{}}
		f.Problem = "The stored spec could not be read (" + err.Error() + "); paste a corrected one below."
		f.SpecText = string(fs.Spec)
	} else {
		f = formOfSpec(sp, fs.Version)
		if y, err := sp.YAML(); err == nil {
			f.SpecYAML = string(y)
		}
		if len(f.Errors) > 0 {
			f.Problem = "Parts of the stored spec do not fit this server's connectors; see the marked fields."
		}
	}
	f.Name = name
	s.renderFlowForm(w, r, q, http.StatusOK, f)
}

// postFlowForm handles every button of the form.
func (s *Server) postFlowForm(w http.ResponseWriter, r *http.Request, q *uiReq) {
	f := readFlowForm(r)
	name := r.PathValue("name")
	f.New = name == ""
	if !f.New {
		// The edited flow is the page's, whatever the form says.
		f.Name = name
		if _, ok := s.loadSpecFlow(w, r, q, name); !ok {
			return
		}
	}
	op := r.PostFormValue("op")
	switch {
	case op == "add-transform":
		f.Transforms = append(f.Transforms, transformRow{})
	case strings.HasPrefix(op, "remove-transform-"), strings.HasPrefix(op, "up-transform-"), strings.HasPrefix(op, "down-transform-"):
		i, err := strconv.Atoi(op[strings.LastIndex(op, "-")+1:])
		if err != nil || i < 0 || i >= len(f.Transforms) {
			break
		}
		switch {
		case strings.HasPrefix(op, "remove"):
			f.Transforms = append(f.Transforms[:i], f.Transforms[i+1:]...)
		case strings.HasPrefix(op, "up") && i > 0:
			f.Transforms[i-1], f.Transforms[i] = f.Transforms[i], f.Transforms[i-1]
		case strings.HasPrefix(op, "down") && i+1 < len(f.Transforms):
			f.Transforms[i+1], f.Transforms[i] = f.Transforms[i], f.Transforms[i+1]
		}
	case op == "load-spec":
		s.loadPastedSpec(w, r, q, f)
		return
	case op == "preview":
		if sp, fl, ok := f.check(); ok {
			f.Preview = s.previewSpec(r.Context(), sp, fl)
		}
	case op == "save":
		s.saveFlowForm(w, r, q, f)
		return
	case op == "refresh":
		// Show the chosen kinds' settings (without JavaScript).
	default: // "validate", and Enter in a text input
		if _, _, ok := f.check(); ok {
			f.Notice = "The flow is valid."
		}
	}
	status := http.StatusOK
	if f.Problem != "" {
		status = http.StatusUnprocessableEntity
	}
	s.renderFlowForm(w, r, q, status, f)
}

// loadPastedSpec replaces the form with a pasted spec.
func (s *Server) loadPastedSpec(w http.ResponseWriter, r *http.Request, q *uiReq, typed *flowForm) {
	sp, err := parsePastedSpec(typed.SpecText)
	if err != nil {
		typed.setErr("spec_text", err.Error())
		typed.Problem = "The pasted spec could not be read: " + err.Error()
		s.renderFlowForm(w, r, q, http.StatusUnprocessableEntity, typed)
		return
	}
	f := formOfSpec(sp, typed.Version)
	f.New = typed.New
	if !f.New && sp.Name != typed.Name && sp.Name != "" {
		f.setErr("name", fmt.Sprintf("the pasted spec names flow %q, but this page edits %q; the name was kept", sp.Name, typed.Name))
	}
	if !f.New {
		f.Name = typed.Name
	}
	status := http.StatusOK
	if len(f.Errors) > 0 {
		f.Problem = "The pasted spec was loaded, with problems; see the marked fields."
		status = http.StatusUnprocessableEntity
	} else {
		f.Notice = "The pasted spec was loaded into the form; check it, then save."
	}
	s.renderFlowForm(w, r, q, status, f)
}

// saveFlowForm stores the form's spec as a new flow or a new version.
func (s *Server) saveFlowForm(w http.ResponseWriter, r *http.Request, q *uiReq, f *flowForm) {
	sp, fl, ok := f.check()
	if !ok {
		s.renderFlowForm(w, r, q, http.StatusUnprocessableEntity, f)
		return
	}
	specJSON, err := json.Marshal(sp)
	if err != nil {
		s.uiFailErr(w, r, q, fmt.Errorf("encode spec of flow %s: %w", sp.Name, err))
		return
	}
	if f.New && !s.allow(w, r, actionEditFlows, sp.Name) {
		// The Authorize hook learns the new flow's name only now.
		return
	}
	defaults, _ := json.Marshal(fl.Options.WithDefaults(flows.Defaults))
	p := store.SaveFlowSpec{
		Name: sp.Name, Description: sp.Description, Spec: specJSON, Defaults: defaults,
		CreatedBy: q.identity, Create: f.New,
	}
	if !f.New {
		p.IfVersion = f.Version
	}
	saved, err := s.opts.Store.SaveFlowSpec(r.Context(), p)
	if err != nil {
		status, msg := s.uiError(r, err)
		f.SpecYAML = ""
		switch {
		case errors.Is(err, store.ErrConflict) && f.New:
			f.setErr("name", "a flow or definition of this name exists already")
			f.Problem = fmt.Sprintf("Nothing was saved: flow %s exists already. Choose another name, or edit that flow.", sp.Name)
		case errors.Is(err, store.ErrConflict):
			f.Problem = fmt.Sprintf("Nothing was saved: flow %s was changed by someone else since you opened version %d.", sp.Name, f.Version)
			if cur, err := s.opts.Store.GetFlowSpec(r.Context(), sp.Name, 0); err == nil {
				f.Problem = fmt.Sprintf("Nothing was saved: flow %s was changed since you opened version %d; it is now at version %d (by %s). "+
					"Open the edit page again to start from the latest version; your changes are still in this form.",
					sp.Name, f.Version, cur.Version, cmpOr(cur.CreatedBy, "unknown"))
				if cs, err := flows.ParseSpec(cur.Spec); err == nil {
					if y, err := cs.YAML(); err == nil {
						f.Current = string(y)
					}
				}
			}
		case errors.Is(err, store.ErrNotFound):
			f.Problem = fmt.Sprintf("Nothing was saved: flow %s no longer exists (it was deleted).", sp.Name)
		default:
			f.Problem = "Nothing was saved: " + msg
		}
		s.renderFlowForm(w, r, q, status, f)
		return
	}
	s.log.Info("flow spec saved", zap.String("definition", saved.Name), zap.Int64("version", saved.Version), zap.String("by", q.identity))
	msg := fmt.Sprintf("Flow %s saved as version %d.", saved.Name, saved.Version)
	if f.New {
		msg += " It is inactive: activate it to run it by its runtime."
	}
	s.redirect(w, r, "/flows/"+pathEscape(saved.Name), &flash{Kind: "ok", Message: msg})
}

// flowFormView is what the form template gets.
type flowFormView struct {
	*flowForm
	Action       string
	NextVersion  int64
	SourcePicker kindPicker
	SinkPicker   kindPicker
	Rows         []transformView
	Types        []typeOption
	OptionRows   []optionView
	// Other are errors no input shows (on the summary).
	Other []string
}

// kindPicker is one side's connector select and settings.
type kindPicker struct {
	Side  string
	Kinds []kindView
	Error string
}

type typeOption struct{ Name, Hint string }

type kindView struct {
	Kind, Description string
	Selected          bool
	Settings          []settingView
}

type settingView struct {
	flows.SettingSchema
	Input, ID, Value, Error string
}

type transformView struct {
	transformRow
	Index       int
	Error, Hint string
	Last        bool
}

type optionView struct {
	Field, Label, Help, Value, Error, ID string
	Integer                              bool
}

func (s *Server) renderFlowForm(w http.ResponseWriter, r *http.Request, q *uiReq, status int, f *flowForm) {
	v := flowFormView{flowForm: f, NextVersion: f.Version + 1,
		SourcePicker: kindPicker{Side: "source", Error: f.Errors["source.kind"]},
		SinkPicker:   kindPicker{Side: "sink", Error: f.Errors["sink.kind"]}}
	for _, t := range flows.TransformTypes() {
		v.Types = append(v.Types, typeOption{t, cmpOr(transformHints[t], `{"setting": "value"}`)})
	}
	title := "New flow"
	v.Action = "/flows/new"
	if !f.New {
		title = "Edit flow " + f.Name
		v.Action = "/flows/" + pathEscape(f.Name) + "/edit"
	}
	shown := map[string]bool{}
	errOf := func(field string) string {
		shown[field] = true
		return f.Errors[field]
	}
	for _, c := range flows.Connectors() {
		for _, side := range []string{"source", "sink"} {
			cfg := zeroConfig(side, c.Kind)
			if cfg == nil {
				continue
			}
			k := kindView{Kind: c.Kind, Description: c.Description}
			if side == "source" {
				k.Selected = c.Kind == f.SourceKind
			} else {
				k.Selected = c.Kind == f.SinkKind
			}
			for _, st := range flows.Schema(cfg) {
				in := side + "." + c.Kind + "." + st.Name
				sv := settingView{SettingSchema: st, Input: in, ID: strings.ReplaceAll(in, ".", "-"), Value: f.Values[in]}
				if k.Selected {
					sv.Error = errOf(side + "." + st.Name)
				}
				k.Settings = append(k.Settings, sv)
			}
			if side == "source" {
				v.SourcePicker.Kinds = append(v.SourcePicker.Kinds, k)
			} else {
				v.SinkPicker.Kinds = append(v.SinkPicker.Kinds, k)
			}
		}
	}
	for i, t := range f.Transforms {
		v.Rows = append(v.Rows, transformView{transformRow: t, Index: i, Hint: cmpOr(transformHints[t.Type], `{"setting": "value"}`),
			Error: errOf(fmt.Sprintf("transforms[%d]", i)), Last: i == len(f.Transforms)-1})
	}
	for _, o := range specOptionFields {
		v.OptionRows = append(v.OptionRows, optionView{Field: o.Field, Label: o.Label, Help: o.Help, Value: f.Options[o.Field],
			Error: errOf(o.Field), ID: strings.ReplaceAll(strings.ReplaceAll(o.Field, ".", "-"), "_", "-"), Integer: o.Kind == "integer"})
	}
	for _, field := range []string{"name", "description", "runtime", "source.kind", "sink.kind", "spec_text"} {
		shown[field] = true
	}
	keys := make([]string, 0, len(f.Errors))
	for k := range f.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !shown[k] {
			v.Other = append(v.Other, strings.TrimPrefix(k+": ", ": ")+f.Errors[k])
		}
	}
	p := s.newPage(w, r, q, title, "flows")
	p.Data = v
	s.render(w, r, status, "flowform", p)
}
