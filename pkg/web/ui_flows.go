package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// connectorView is a connector as the flows page shows it.
type connectorView struct {
	Type     string
	Settings []setting
}

type setting struct{ Key, Value string }

func connectorOf(c flows.ConnectorConfig) connectorView {
	v := connectorView{Type: c.Kind}
	var m map[string]json.RawMessage
	if json.Unmarshal(c.Settings, &m) != nil {
		if len(c.Settings) > 0 {
			v.Settings = []setting{{"settings", string(c.Settings)}}
		}
		return v
	}
	for k, raw := range m {
		var str string
		val := string(raw)
		if json.Unmarshal(raw, &str) == nil {
			val = str
		}
		if val == "null" || val == "" || val == "[]" || val == "{}" {
			continue
		}
		v.Settings = append(v.Settings, setting{k, val})
	}
	sort.Slice(v.Settings, func(i, j int) bool { return v.Settings[i].Key < v.Settings[j].Key })
	return v
}

type flowView struct {
	api.Flow
	Registered bool
	Source     connectorView
	Sink       connectorView
	Transforms []string
	// Delivery says what a redelivered batch does at the sink.
	Delivery string
	Runs     []api.Run
	Busy     bool // a run is still going, so "trigger now" would be refused
	// Spec is true for a flow stored as a spec (editable in the UI),
	// false for one defined in code (read-only); Version is its latest
	// version, SpecYAML its spec and History its versions, newest first
	// (on the flow's page only).
	Spec     bool
	Version  int64
	SpecYAML string
	History  []specVersion
}

// specVersion is one stored version of a spec flow, as its page lists it.
type specVersion struct {
	Version   int64
	CreatedBy string
	CreatedAt time.Time
	YAML      string
}

func (s *Server) flowView(ctx context.Context, fs store.FlowState, recent int) flowView {
	v := flowView{Flow: s.flowOf(ctx, fs)}
	_, err := s.opts.Registry.Resolve(ctx, fs.Name, 0)
	v.Registered = err == nil
	var cfg flows.Config
	if json.Unmarshal(v.Config, &cfg) == nil {
		v.Source, v.Sink, v.Transforms = connectorOf(cfg.Source), connectorOf(cfg.Sink), cfg.Transforms
		v.Delivery = delivery(cfg)
		if v.Runtime == "" {
			v.Runtime = cfg.Runtime
		}
	}
	if pg, err := s.opts.Store.ListRuns(ctx, store.RunFilter{Definition: fs.Name, Limit: recent}); err == nil {
		now := time.Now()
		for _, r := range pg.Items {
			v.Runs = append(v.Runs, runOf(r, now))
		}
		v.Busy = len(pg.Items) > 0 && !pg.Items[0].State.Terminal()
	}
	if d, err := s.opts.Store.GetDefinition(ctx, fs.Name); err == nil && d.Origin == store.OriginSpec {
		specFlowView(&v, d)
	}
	return v
}

func (s *Server) flowsPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	states, err := s.opts.Store.ListFlows(r.Context())
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	var flows []flowView
	for _, fs := range states {
		flows = append(flows, s.flowView(r.Context(), fs, 5))
	}
	p := s.newPage(w, r, q, "Flows", "flows")
	p.Data = flows
	s.render(w, r, http.StatusOK, "flows", p)
}

func (s *Server) flowPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	fs, err := s.opts.Store.GetFlow(r.Context(), r.PathValue("name"))
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	p := s.newPage(w, r, q, "Flow "+fs.Name, "flows")
	v := s.flowView(r.Context(), fs, 25)
	if v.Spec {
		v.History = s.specHistory(r.Context(), fs.Name)
	}
	p.Data = v
	s.render(w, r, http.StatusOK, "flow", p)
}

// specFlowView adds what a spec flow's stored definition (whose Config
// is the spec) says to its view. When this process did not describe the
// flow (it resolves no spec flows), the spec, compiled here, does.
func specFlowView(v *flowView, d store.Definition) {
	v.Spec, v.Version = true, d.Version
	// The store is where a spec flow's configuration lives, so this
	// process knows it whether or not it registered the flow.
	v.Registered = true
	v.Description = cmpOr(v.Description, d.Description)
	sp, err := flows.ParseSpec(d.Config)
	if err != nil {
		return
	}
	if y, err := sp.YAML(); err == nil {
		v.SpecYAML = string(y)
	}
	if len(v.Config) > 0 {
		return
	}
	v.Runtime = cmpOr(sp.Runtime, "once")
	if fl, err := sp.Compile(); err == nil {
		var cfg flows.Config
		if raw, err := flows.Describe(fl); err == nil && json.Unmarshal(raw, &cfg) == nil {
			v.Source, v.Sink, v.Transforms = connectorOf(cfg.Source), connectorOf(cfg.Sink), cfg.Transforms
			v.Delivery, v.Runtime = delivery(cfg), fl.Runtime.String()
			return
		}
	}
	v.Source, v.Sink = connectorOf(sp.Source), connectorOf(sp.Sink)
	for _, t := range sp.Transforms {
		v.Transforms = append(v.Transforms, cmpOr(t.Name, t.Type))
	}
}

// specHistory is a spec flow's versions, newest first, with the YAML of
// the 20 latest.
func (s *Server) specHistory(ctx context.Context, name string) []specVersion {
	versions, err := s.opts.Store.ListFlowSpecs(ctx, name)
	if err != nil {
		s.log.Warn("list flow spec versions", zap.String("definition", name), zapErr(err))
		return nil
	}
	var out []specVersion
	for i, fs := range versions {
		sv := specVersion{Version: fs.Version, CreatedBy: fs.CreatedBy, CreatedAt: fs.CreatedAt}
		if sp, err := flows.ParseSpec(fs.Spec); err == nil && i < 20 {
			if y, err := sp.YAML(); err == nil {
				sv.YAML = string(y)
			}
		}
		out = append(out, sv)
	}
	return out
}

// flowBack is where a flow action returns: the flow's page or the list,
// as the form says.
func flowBack(r *http.Request, name string) string {
	if r.PostFormValue("back") == "flow" {
		return "/flows/" + pathEscape(name)
	}
	return "/flows"
}

func (s *Server) setFlowActiveUI(w http.ResponseWriter, r *http.Request, q *uiReq, active bool) {
	name := r.PathValue("name")
	if _, err := s.opts.Store.SetFlowActive(r.Context(), name, active); err != nil {
		status, msg := s.uiError(r, err)
		if status == http.StatusNotFound {
			s.uiFail(w, r, q, status, msg)
			return
		}
		s.redirect(w, r, flowBack(r, name), &flash{Kind: "error", Message: msg})
		return
	}
	s.log.Info("flow activation", zap.String("definition", name), zap.Bool("active", active), zap.String("by", q.identity))
	msg := fmt.Sprintf("Flow %s activated: it runs by its runtime from now on.", name)
	if !active {
		msg = fmt.Sprintf("Flow %s deactivated: it starts no new run by itself.", name)
	}
	s.redirect(w, r, flowBack(r, name), &flash{Kind: "ok", Message: msg})
}

func (s *Server) uiActivateFlow(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.setFlowActiveUI(w, r, q, true)
}

func (s *Server) uiDeactivateFlow(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.setFlowActiveUI(w, r, q, false)
}

// uiTriggerFlow starts a run of the flow now, unless one is still going
// (as POST /api/v1/flows/{name}/trigger).
func (s *Server) uiTriggerFlow(w http.ResponseWriter, r *http.Request, q *uiReq) {
	name := r.PathValue("name")
	if _, err := s.opts.Store.GetFlow(r.Context(), name); err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	fail := func(msg string) { s.redirect(w, r, flowBack(r, name), &flash{Kind: "error", Message: msg}) }
	pg, err := s.opts.Store.ListRuns(r.Context(), store.RunFilter{Definition: name, Limit: 1})
	if err != nil {
		_, msg := s.uiError(r, err)
		fail(msg)
		return
	}
	if len(pg.Items) > 0 && !pg.Items[0].State.Terminal() {
		fail(fmt.Sprintf("Run %d of flow %s is still %s; trigger again when it ends.", pg.Items[0].ID, name, pg.Items[0].State))
		return
	}
	run, err := s.ctl.CreateRun(r.Context(), control.NewRun{Definition: name, CreatedBy: q.identity, Created: s.createdEvent(q.identity, viaUI)})
	if err != nil {
		_, msg := s.uiError(r, err)
		fail(msg)
		return
	}
	s.log.Info("flow triggered", zap.String("definition", name), zap.Int64("run", run.ID), zap.String("by", q.identity))
	s.redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), &flash{Kind: "ok", Message: fmt.Sprintf("Run %d of flow %s started.", run.ID, name)})
}

// delivery describes a flow's sink guarantee as the flows page shows it.
func delivery(cfg flows.Config) string {
	switch {
	case cfg.Transactional:
		return "exactly once when the store is the SQL store on the application database (the write commits with the checkpoint); otherwise " + string(cfg.Guarantee)
	case cfg.Guarantee == flows.Idempotent:
		return "idempotent: a redelivered batch changes nothing (effectively once)"
	case cfg.Guarantee == flows.AtLeastOnce:
		return "at least once: a batch redelivered after a crash may be written twice"
	}
	return string(cfg.Guarantee)
}
