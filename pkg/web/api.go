package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

func zapErr(err error) zap.Field        { return zap.Error(err) }
func zapPath(r *http.Request) zap.Field { return zap.String("path", r.URL.Path) }

// pathID parses a path id; anything that is not a positive integer is an
// unknown id (404), as ids are opaque strings to clients.
func pathID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != v {
		return 0, fmt.Errorf("%s %q: %w", name, v, store.ErrNotFound)
	}
	return id, nil
}

func (s *Server) definitionOf(j engine.Job) api.Definition {
	d := j.Definition()
	out := api.Definition{Name: d.Name, Kind: string(d.Kind), Description: d.Description,
		Params: j.Params(), Config: d.Config}
	eff, from := s.ctl.EffectiveDefaults(j)
	out.Defaults, out.DefaultsFrom = optionsOf(eff), from
	if out.Params.Fields == nil {
		out.Params.Fields = []params.Field{}
	}
	if t, ok := j.(engine.Triggered); ok {
		out.Runtime = t.Runtime().String()
	}
	return out
}

func (s *Server) listDefinitions(w http.ResponseWriter, r *http.Request, _ string) {
	items := []api.Definition{}
	for _, j := range s.opts.Registry.Jobs() {
		items = append(items, s.definitionOf(j))
	}
	writeJSON(w, http.StatusOK, api.Page[api.Definition]{Items: items})
}

func (s *Server) job(ctx context.Context, name string) (engine.Job, error) {
	j, err := s.opts.Registry.Resolve(ctx, name, 0)
	if errors.Is(err, engine.ErrUnknownDefinition) {
		return nil, fmt.Errorf("definition %q: %w", name, store.ErrNotFound)
	}
	return j, err
}

// preview counts the records a run would cover: ?params=<JSON>&batch_size=N.
func (s *Server) preview(w http.ResponseWriter, r *http.Request, _ string) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	raw := json.RawMessage(q.Get("params"))
	if len(raw) > 0 {
		if err := checkJSONTokens(raw); err != nil {
			var se *strictError
			errors.As(err, &se)
			field := "params"
			if se.Field != "" {
				field += "." + se.Field
			}
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, field, "params: %s", se.Message))
			return
		}
	}
	size := j.Defaults().BatchSize
	if v := q.Get("batch_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxBatchSize {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "batch_size", "batch_size must be an integer between 1 and %d", store.MaxBatchSize))
			return
		}
		size = n
	}
	if _, err := j.CanonicalParams(raw); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.opts.DB == nil {
		writeError(w, http.StatusServiceUnavailable, errorf(api.CodeUnavailable, "", "no database configured for previews"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	pipe, err := j.Open(ctx, engine.Env{DB: s.opts.DB, Logger: s.log, Resources: s.opts.Resources}, raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, est, err := pipe.Count(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Preview{Records: n, Batches: (n + int64(size) - 1) / int64(size), Estimated: est, BatchSize: size})
}

// decodeBody reads a JSON body strictly (see decodeStrict): malformed JSON
// or trailing data is 400, an unknown, miscased or duplicate key 422
// naming it, an oversized body 413.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if err := decodeStrict(body, v); err != nil {
		s.writeDecodeError(w, err)
		return false
	}
	return true
}

// writeDecodeError answers a body decodeStrict refused.
func (s *Server) writeDecodeError(w http.ResponseWriter, err error) {
	var (
		ute *json.UnmarshalTypeError
		se  *strictError
	)
	switch {
	case errors.As(err, &se):
		code := codeInvalid
		if se.Status == http.StatusBadRequest {
			code = codeBadRequest
		}
		writeError(w, se.Status, errorf(code, se.Field, "%s", se.Message))
	case errors.As(err, &ute) && ute.Field == "":
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "", "the body must be a JSON object, not %s", ute.Value))
	case errors.As(err, &ute):
		// Say it in JSON's words (an integer, a list), not Go's (int64,
		// []api.HealthCheck).
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, ute.Field, "%s must be %s, not %s", ute.Field, jsonKindOf(ute.Type), ute.Value))
	default:
		writeError(w, http.StatusBadRequest, errorf(codeBadRequest, "", "malformed JSON body"))
	}
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request, who string) {
	var req api.CreateRun
	if !s.decodeBody(w, r, &req) {
		return
	}
	if req.Definition == "" {
		writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "definition", "definition is required"))
		return
	}
	if !s.allow(w, r, ActionStart, req.Definition) {
		return
	}
	if req.DryRun || req.DryRunBatches != nil {
		s.apiDryRun(w, r, who, req) // api_dryrun.go
		return
	}
	n := control.NewRun{
		Definition: req.Definition, Params: req.Params, CreatedBy: who, StartAt: req.StartAt,
		BatchSize: req.BatchSize, MaxInFlight: req.MaxInFlight, MaxAttempts: req.MaxAttempts,
		RowsPerSecond: req.RowsPerSecond, ErrorBudget: req.ErrorBudget,
		HealthChecks: healthChecksIn(req.HealthChecks),
	}
	if req.SleepMS != nil {
		if *req.SleepMS < 0 || *req.SleepMS > store.MaxSleep.Milliseconds() {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "sleep_ms", "sleep_ms must be between 0 and %d (%s)", store.MaxSleep.Milliseconds(), store.MaxSleep))
			return
		}
		d := time.Duration(*req.SleepMS) * time.Millisecond
		n.Sleep = &d
	}
	if req.BatchTimeoutMS != nil {
		if *req.BatchTimeoutMS < 0 || *req.BatchTimeoutMS > store.MaxBatchTimeout.Milliseconds() {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "batch_timeout_ms", "batch_timeout_ms must be between 0 and %d (%s)", store.MaxBatchTimeout.Milliseconds(), store.MaxBatchTimeout))
			return
		}
		d := time.Duration(*req.BatchTimeoutMS) * time.Millisecond
		n.BatchTimeout = &d
	}
	if req.TargetBatchMS != nil {
		if ms := *req.TargetBatchMS; ms != 0 && (ms < store.MinTargetBatchTime.Milliseconds() || ms > store.MaxTargetBatchTime.Milliseconds()) {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "target_batch_ms", "target_batch_ms must be 0 (off) or between %d and %d, got %d",
				store.MinTargetBatchTime.Milliseconds(), store.MaxTargetBatchTime.Milliseconds(), ms))
			return
		}
		d := time.Duration(*req.TargetBatchMS) * time.Millisecond
		n.TargetBatchTime = &d
	}
	n.MinBatchSize, n.MaxBatchSize = req.MinBatchSize, req.MaxBatchSize
	n.Created = s.createdEvent(who, viaOf(r))
	run, err := s.ctl.CreateRun(r.Context(), n)
	if err != nil {
		var ae *store.ArgumentError
		if errors.As(err, &ae) && (ae.Field == "sleep" || ae.Field == "batch_timeout") {
			ae.Field += "_ms"
		}
		if errors.As(err, &ae) && ae.Field == "target_batch_time" {
			ae.Field = "target_batch_ms"
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("run created", zap.Int64("run", run.ID), zap.String("definition", run.Definition), zap.String("by", who))
	w.Header().Set("Location", s.base+"/api/v1/runs/"+strconv.FormatInt(run.ID, 10))
	writeJSON(w, http.StatusCreated, runOf(run, time.Now()))
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, who string) {
	q := r.URL.Query()
	f := store.RunFilter{Definition: q.Get("definition"), CreatedBy: q.Get("created_by"), Kind: store.Kind(q.Get("kind")), Cursor: q.Get("cursor")}
	if q.Get("mine") == "true" {
		f.CreatedBy = who
	}
	var ok bool
	if f.States, f.Limit, ok = listQuery(s, w, r, store.ParseRunState); !ok {
		return
	}
	page, err := s.opts.Store.ListRuns(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := time.Now()
	out := api.Page[api.Run]{Items: make([]api.Run, 0, len(page.Items)), NextCursor: page.NextCursor}
	for _, run := range page.Items {
		out.Items = append(out.Items, runOf(run, now))
	}
	writeJSON(w, http.StatusOK, out)
}

// listQuery reads a list's status filter (comma-separated or repeated
// status parameters, each parsed by parse) and its limit. On bad input it
// writes the error answer and returns ok false.
func listQuery[S any](s *Server, w http.ResponseWriter, r *http.Request, parse func(string) (S, error)) (states []S, limit int, ok bool) {
	q := r.URL.Query()
	for _, v := range splitList(q["status"]) {
		st, err := parse(v)
		if err != nil {
			s.fail(w, r, err)
			return nil, 0, false
		}
		states = append(states, st)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "limit", "limit must be an integer"))
			return nil, 0, false
		}
		limit = n
	}
	return states, limit, true
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	run, err := s.opts.Store.GetRun(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := runOf(run, time.Now())
	out.BatchSizeNow = s.batchSizeNow(r.Context(), run)
	writeJSON(w, http.StatusOK, out)
}

// batchSizeNow is the size an adaptive run's batches are planned with now:
// its last planned batch's (the scheduler records it on every batch), or
// its batch size before the first. 0 for a run that does not adapt.
func (s *Server) batchSizeNow(ctx context.Context, run store.Run) int {
	if !run.Options.Adaptive() {
		return 0
	}
	if n := run.BatchesTotal(); n > 0 {
		if b, err := s.opts.Store.GetBatch(ctx, run.ID, n); err == nil && b.Size > 0 {
			return b.Size
		}
	}
	return run.Options.BatchSize
}

func (s *Server) control(w http.ResponseWriter, r *http.Request, who, action string, do func(context.Context, int64) (store.Run, error)) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := do(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("run "+action, zap.Int64("run", id), zap.String("by", who))
	run, err := s.opts.Store.GetRun(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.noteAction(r.Context(), who, viaOf(r), action, run)
	writeJSON(w, http.StatusOK, runOf(run, time.Now()))
}

func (s *Server) pauseRun(w http.ResponseWriter, r *http.Request, who string) {
	s.control(w, r, who, "paused", s.ctl.Pause)
}

func (s *Server) resumeRun(w http.ResponseWriter, r *http.Request, who string) {
	s.control(w, r, who, "resumed", s.ctl.Resume)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, who string) {
	s.control(w, r, who, "cancelled", s.ctl.Cancel)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, who string, seq *int64) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.ctl.Retry(r.Context(), id, seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("failed batches retried", zap.Int64("run", id), zap.Int64("batches", n), zap.String("by", who))
	s.noteRetry(r.Context(), who, viaOf(r), id, seq, n)
	run, err := s.opts.Store.GetRun(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Retried{Retried: n, Run: runOf(run, time.Now())})
}

func (s *Server) retryRun(w http.ResponseWriter, r *http.Request, who string) {
	s.retry(w, r, who, nil)
}

func (s *Server) retryBatch(w http.ResponseWriter, r *http.Request, who string) {
	seq, err := pathID(r, "batch")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.retry(w, r, who, &seq)
}

// BatchOf converts a store batch.
func (s *Server) batchOf(b store.Batch, def string) api.Batch {
	return api.Batch{
		RunID: strconv.FormatInt(b.RunID, 10), ID: strconv.FormatInt(b.Seq, 10), Status: string(b.State),
		Lo: b.Lo, Hi: b.Hi, Size: b.Size, Attempts: b.Attempts, Retries: b.Retries, Worker: b.Worker,
		Rows:       api.Rows{Read: b.RowsRead, Written: b.RowsWritten, Skipped: b.RowsSkipped},
		DurationMS: b.Duration.Milliseconds(), Error: b.Error, ErrorStack: b.ErrorStack,
		TaskID:    tasks.BatchPayload{RunID: b.RunID, Seq: b.Seq, Retry: b.Retries, Definition: def}.TaskID(),
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, EnqueuedAt: b.EnqueuedAt, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt,
	}
}

func (s *Server) listBatches(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.BatchFilter{Cursor: q.Get("cursor")}
	var ok bool
	if f.States, f.Limit, ok = listQuery(s, w, r, store.ParseBatchState); !ok {
		return
	}
	page, err := s.opts.Store.ListBatches(r.Context(), id, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.Page[api.Batch]{Items: make([]api.Batch, 0, len(page.Items)), NextCursor: page.NextCursor}
	for _, b := range page.Items {
		out.Items = append(out.Items, s.batchOf(b, ""))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) flowOf(ctx context.Context, fs store.FlowState) api.Flow {
	f := api.Flow{Name: fs.Name, Origin: api.OriginCode, Active: fs.Active, Watermark: fs.Watermark, WatermarkUpdatedAt: fs.WatermarkUpdatedAt,
		MissedTicks: fs.MissedTicks, LastMissedTick: fs.LastMissedTick}
	if d, err := s.opts.Store.GetDefinition(ctx, fs.Name); err == nil && d.Origin == store.OriginSpec {
		// A spec flow: what the store holds is the truth, whatever this
		// process has compiled.
		f.Origin, f.Version, f.Description, f.Spec = api.OriginSpec, d.Version, d.Description, d.Config
		f.Runtime = specRuntime(d.Config)
	} else if j, ok := s.opts.Registry.Lookup(fs.Name); ok {
		d := s.definitionOf(j)
		f.Description, f.Runtime, f.Config = d.Description, d.Runtime, d.Config
	}
	if page, err := s.opts.Store.ListRuns(ctx, store.RunFilter{Definition: fs.Name, Limit: 1}); err == nil && len(page.Items) > 0 {
		last := runOf(page.Items[0], time.Now())
		f.LastRun = &last
	}
	return f
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request, _ string) {
	flows, err := s.opts.Store.ListFlows(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.Page[api.Flow]{Items: []api.Flow{}}
	for _, fs := range flows {
		out.Items = append(out.Items, s.flowOf(r.Context(), fs))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) setFlowActive(w http.ResponseWriter, r *http.Request, who string, active bool) {
	name := r.PathValue("name")
	fs, err := s.opts.Store.SetFlowActive(r.Context(), name, active)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("flow activation", zap.String("definition", name), zap.Bool("active", active), zap.String("by", who))
	writeJSON(w, http.StatusOK, s.flowOf(r.Context(), fs))
}

func (s *Server) activateFlow(w http.ResponseWriter, r *http.Request, who string) {
	s.setFlowActive(w, r, who, true)
}

func (s *Server) deactivateFlow(w http.ResponseWriter, r *http.Request, who string) {
	s.setFlowActive(w, r, who, false)
}

// triggerFlow starts a run of the flow now, unless one is still going.
func (s *Server) triggerFlow(w http.ResponseWriter, r *http.Request, who string) {
	name := r.PathValue("name")
	if _, err := s.opts.Store.GetFlow(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.opts.Store.ListRuns(r.Context(), store.RunFilter{Definition: name, Limit: 1})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The store refuses a second live run of a flow atomically (a
	// *store.FlowBusyError from CreateRun); this early answer only says it
	// without building anything.
	if len(page.Items) > 0 && !page.Items[0].State.Terminal() {
		s.fail(w, r, &store.FlowBusyError{Flow: name, RunID: page.Items[0].ID, State: page.Items[0].State})
		return
	}
	run, err := s.ctl.CreateRun(r.Context(), control.NewRun{Definition: name, CreatedBy: who, Created: s.createdEvent(who, viaOf(r))})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, runOf(run, time.Now()))
}
