package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// commonZones are offered in the time-zone field; any IANA name works.
var commonZones = []string{
	"UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin",
	"Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Zurich", "Europe/Stockholm",
	"Europe/Warsaw", "Europe/Athens", "Europe/Helsinki", "Europe/Istanbul", "Europe/Moscow",
	"Africa/Cairo", "Africa/Johannesburg", "Africa/Lagos", "Asia/Dubai", "Asia/Kolkata",
	"Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Tokyo", "Asia/Seoul",
	"Australia/Sydney", "Australia/Perth", "Pacific/Auckland", "America/Sao_Paulo",
	"America/Argentina/Buenos_Aires", "America/Mexico_City", "America/New_York",
	"America/Toronto", "America/Chicago", "America/Denver", "America/Phoenix",
	"America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
}

var errNoPreviewDB = errors.New("no database configured for previews")

// Layouts an <input type="datetime-local"> sends.
var localLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

type definitionsData struct {
	Backfills []api.Definition
	Flows     []api.Definition
}

func (s *Server) definitionsPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	var data definitionsData
	for _, j := range s.opts.Registry.Jobs() {
		d := s.definitionOf(j)
		if d.Kind == string(store.KindFlow) {
			data.Flows = append(data.Flows, d)
		} else {
			data.Backfills = append(data.Backfills, d)
		}
	}
	p := s.newPage(w, r, q, "Definitions", "definitions")
	p.Data = data
	s.render(w, r, http.StatusOK, "definitions", p)
}

// formField is one input of a definition's "start run" form.
type formField struct {
	Name     string // the param's name; the input is "p.<name>"
	Type     string
	Input    string // text, number, select, checkbox, datetime-local
	Step     string
	Required bool
	Help     string
	Options  []formOption
	Value    string
	Checked  bool
	// UTC is the instant a datetime-local value shows in UTC, so app.js
	// can move it to the reader's zone together with the zone field.
	UTC         string
	Placeholder string
	Invalid     bool
}

type formOption struct {
	Value, Label string
	Selected     bool
}

// runForm is the state of a "start run" form: what the user typed, kept
// when the form comes back with an error or a preview.
type runForm struct {
	Fields []formField
	// Run options; empty keeps the definition's default.
	BatchSize, MaxInFlight, MaxAttempts, RowsPerSecond, SleepMS, ErrorBudget, BatchTimeoutMS string
	When                                                                                     string // "now" or "later"
	StartAt                                                                                  string
	TZ                                                                                       string
	AutoTZ                                                                                   bool
	Error                                                                                    string
	ErrorField                                                                               string
	Preview                                                                                  *api.Preview
	PreviewError                                                                             string
	OptionsOpen                                                                              bool
	// DryRun is a dry run's report shown under the form (ui_dryrun.go),
	// DryRunError why it could not be done, DryRunBatches how many batches
	// were asked for.
	DryRun        *api.DryRun
	DryRunError   string
	DryRunBatches string

	// The adaptive batch size's options: target (ms) and bounds.
	TargetBatchMS, MinBatchSize, MaxBatchSize string
}

type definitionData struct {
	Def        api.Definition
	Form       runForm
	Zones      []string
	RecentRuns []api.Run
	CanPreview bool
}

func (s *Server) definitionPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	s.renderDefinition(w, r, q, http.StatusOK, j, s.defaultForm(j))
}

func (s *Server) renderDefinition(w http.ResponseWriter, r *http.Request, q *uiReq, status int, j engine.Job, form runForm) {
	d := s.definitionOf(j)
	data := definitionData{Def: d, Form: form, Zones: commonZones, CanPreview: s.opts.DB != nil}
	if pg, err := s.opts.Store.ListRuns(r.Context(), store.RunFilter{Definition: d.Name, Limit: 5}); err == nil {
		now := time.Now()
		for _, run := range pg.Items {
			data.RecentRuns = append(data.RecentRuns, runOf(run, now))
		}
	}
	p := s.newPage(w, r, q, d.Name, "definitions")
	p.Data = data
	s.render(w, r, status, "definition", p)
}

// defaultForm is a fresh form: every param at its default, start now, in
// UTC until app.js moves it to the reader's zone.
func (s *Server) defaultForm(j engine.Job) runForm {
	f := runForm{When: "now", TZ: "UTC", AutoTZ: true}
	for _, pf := range j.Params().Fields {
		ff := newFormField(pf)
		if pf.Default != nil {
			switch pf.Type {
			case params.TypeBoolean:
				ff.Checked = pf.Default == true
			case params.TypeTime:
				if t, err := time.Parse(time.RFC3339Nano, fmt.Sprint(pf.Default)); err == nil {
					ff.Value = t.UTC().Format("2006-01-02T15:04:05")
					ff.UTC = t.UTC().Format(time.RFC3339)
				}
			default:
				ff.Value = defaultString(pf.Default)
			}
		}
		ff.Options = enumOptions(pf, ff.Value)
		f.Fields = append(f.Fields, ff)
	}
	return f
}

func defaultString(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	}
	return fmt.Sprint(v)
}

func newFormField(pf params.Field) formField {
	ff := formField{Name: pf.Name, Type: pf.Type, Required: pf.Required, Help: pf.Description, Input: "text"}
	switch {
	case len(pf.Enum) > 0:
		ff.Input = "select"
	case pf.Type == params.TypeBoolean:
		ff.Input = "checkbox"
	case pf.Type == params.TypeInteger:
		ff.Input, ff.Step = "number", "1"
	case pf.Type == params.TypeNumber:
		ff.Input, ff.Step = "number", "any"
	case pf.Type == params.TypeTime:
		ff.Input, ff.Step = "datetime-local", "1"
	case pf.Type == params.TypeDuration:
		ff.Placeholder = "e.g. 90s or 1h30m"
	case pf.Type == params.TypeCSV:
		ff.Input = "file"
		if len(pf.Headers) > 0 {
			ff.Placeholder = "columns " + strings.Join(pf.Headers, ", ")
		}
	}
	return ff
}

// HasFile says whether the form uploads a file (a CSV param), so it must
// be sent as multipart/form-data.
func (f runForm) HasFile() bool {
	for _, ff := range f.Fields {
		if ff.Input == "file" {
			return true
		}
	}
	return false
}

func enumOptions(pf params.Field, value string) []formOption {
	if len(pf.Enum) == 0 {
		return nil
	}
	var out []formOption
	// An optional enum without default may be left unset.
	if !pf.Required && pf.Default == nil {
		out = append(out, formOption{Value: "", Label: "—", Selected: value == ""})
	}
	for _, v := range pf.Enum {
		out = append(out, formOption{Value: v, Label: v, Selected: v == value})
	}
	return out
}

// parseRunForm reads a "start run" form into a run request. Errors are a
// *params.Error or a *store.ArgumentError naming the field; the returned
// form keeps what the user typed either way.
func parseRunForm(j engine.Job, who string, v url.Values) (control.NewRun, runForm, error) {
	form := runForm{
		BatchSize: strings.TrimSpace(v.Get("batch_size")), MaxInFlight: strings.TrimSpace(v.Get("max_in_flight")),
		MaxAttempts: strings.TrimSpace(v.Get("max_attempts")), RowsPerSecond: strings.TrimSpace(v.Get("rows_per_second")),
		SleepMS: strings.TrimSpace(v.Get("sleep_ms")), ErrorBudget: strings.TrimSpace(v.Get("error_budget")),
		BatchTimeoutMS: strings.TrimSpace(v.Get("batch_timeout_ms")),
		TargetBatchMS:  strings.TrimSpace(v.Get("target_batch_ms")), MinBatchSize: strings.TrimSpace(v.Get("min_batch_size")),
		MaxBatchSize: strings.TrimSpace(v.Get("max_batch_size")),
		When:         v.Get("when"), StartAt: strings.TrimSpace(v.Get("start_at")), TZ: strings.TrimSpace(v.Get("tz")),
	}
	if form.When != "later" {
		form.When = "now"
	}
	if form.TZ == "" {
		form.TZ = "UTC"
	}
	form.OptionsOpen = form.BatchSize+form.MaxInFlight+form.MaxAttempts+form.RowsPerSecond+form.SleepMS+form.ErrorBudget+form.BatchTimeoutMS+
		form.TargetBatchMS+form.MinBatchSize+form.MaxBatchSize != ""
	n := control.NewRun{Definition: j.Definition().Name, CreatedBy: who}

	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	loc, err := time.LoadLocation(form.TZ)
	if err != nil || strings.EqualFold(form.TZ, "local") {
		fail(&store.ArgumentError{Field: "tz", Message: fmt.Sprintf("unknown time zone %q; use an IANA name such as Europe/Paris or UTC", form.TZ)})
		loc = time.UTC
	}

	obj := map[string]any{}
	for _, pf := range j.Params().Fields {
		ff := newFormField(pf)
		key := "p." + pf.Name
		raw := v.Get(key)
		switch pf.Type {
		case params.TypeBoolean:
			// An unchecked box sends nothing: that is false, not "default".
			ff.Checked = raw == "true" || raw == "on"
			obj[pf.Name] = ff.Checked
		case params.TypeTime:
			ff.Value = strings.TrimSpace(raw)
			if ff.Value != "" {
				t, err := parseLocal(ff.Value, loc)
				if err != nil {
					ff.Invalid = true
					fail(&params.Error{Field: pf.Name, Message: "must be a date and time such as 2026-01-02T15:04"})
				} else {
					obj[pf.Name] = t.UTC().Format(time.RFC3339Nano)
				}
			}
		case params.TypeCSV:
			// The uploaded file's text (see parseUploads), kept as is and
			// not shown again: a form that comes back asks for the file.
			if raw != "" {
				obj[pf.Name] = raw
			}
		case params.TypeString:
			// Strings are kept as typed: spaces may matter.
			ff.Value = raw
			if raw != "" {
				obj[pf.Name] = raw
			}
		default:
			// Numbers and durations go as strings; params parses them and
			// names the field when they are malformed.
			ff.Value = strings.TrimSpace(raw)
			if ff.Value != "" {
				obj[pf.Name] = ff.Value
			}
		}
		ff.Options = enumOptions(pf, ff.Value)
		form.Fields = append(form.Fields, ff)
	}
	n.Params, _ = json.Marshal(obj)

	intOpt := func(field, s string) *int {
		if s == "" {
			return nil
		}
		x, err := strconv.Atoi(s)
		if err != nil {
			fail(&store.ArgumentError{Field: field, Message: "must be a whole number"})
			return nil
		}
		return &x
	}
	n.BatchSize = intOpt("batch_size", form.BatchSize)
	n.MaxInFlight = intOpt("max_in_flight", form.MaxInFlight)
	n.MaxAttempts = intOpt("max_attempts", form.MaxAttempts)
	n.RowsPerSecond = intOpt("rows_per_second", form.RowsPerSecond)
	n.ErrorBudget = intOpt("error_budget", form.ErrorBudget)
	if ms := intOpt("sleep_ms", form.SleepMS); ms != nil {
		if *ms < 0 || int64(*ms) > store.MaxSleep.Milliseconds() {
			fail(&store.ArgumentError{Field: "sleep_ms", Message: fmt.Sprintf("must be between 0 and %d (%s)", store.MaxSleep.Milliseconds(), store.MaxSleep)})
			*ms = 0
		}
		d := time.Duration(*ms) * time.Millisecond
		n.Sleep = &d
	}
	if ms := intOpt("batch_timeout_ms", form.BatchTimeoutMS); ms != nil {
		if *ms < 0 || int64(*ms) > store.MaxBatchTimeout.Milliseconds() {
			fail(&store.ArgumentError{Field: "batch_timeout_ms", Message: fmt.Sprintf("must be between 0 and %d (%s)", store.MaxBatchTimeout.Milliseconds(), store.MaxBatchTimeout)})
			*ms = 0
		}
		d := time.Duration(*ms) * time.Millisecond
		n.BatchTimeout = &d
	}
	if ms := intOpt("target_batch_ms", form.TargetBatchMS); ms != nil {
		if *ms != 0 && (int64(*ms) < store.MinTargetBatchTime.Milliseconds() || int64(*ms) > store.MaxTargetBatchTime.Milliseconds()) {
			fail(&store.ArgumentError{Field: "target_batch_ms", Message: fmt.Sprintf("must be 0 (off) or between %d and %d",
				store.MinTargetBatchTime.Milliseconds(), store.MaxTargetBatchTime.Milliseconds())})
			*ms = 0
		}
		d := time.Duration(*ms) * time.Millisecond
		n.TargetBatchTime = &d
	}
	n.MinBatchSize = intOpt("min_batch_size", form.MinBatchSize)
	n.MaxBatchSize = intOpt("max_batch_size", form.MaxBatchSize)
	if form.When == "later" {
		if form.StartAt == "" {
			fail(&store.ArgumentError{Field: "start_at", Message: "choose when the run should start"})
		} else if t, err := parseLocal(form.StartAt, loc); err != nil {
			fail(&store.ArgumentError{Field: "start_at", Message: "must be a date and time such as 2026-01-02T15:04"})
		} else {
			t = t.UTC()
			n.StartAt = &t
		}
	}
	if firstErr != nil {
		form.setError(firstErr)
	}
	return n, form, firstErr
}

func parseLocal(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range localLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, s)
}

// setError shows err on the form and marks the field it names.
func (f *runForm) setError(err error) {
	var (
		pe *params.Error
		ae *store.ArgumentError
	)
	switch {
	case errors.As(err, &pe):
		f.ErrorField = "p." + pe.Field
		for i := range f.Fields {
			if f.Fields[i].Name == pe.Field {
				f.Fields[i].Invalid = true
			}
		}
	case errors.As(err, &ae):
		f.ErrorField = ae.Field
		if ae.Field == "target_batch_time" {
			ae.Field = "target_batch_ms"
			f.ErrorField = ae.Field
		}
		if slices.Contains([]string{"batch_size", "max_in_flight", "max_attempts", "rows_per_second", "sleep", "sleep_ms", "error_budget", "batch_timeout", "batch_timeout_ms",
			"target_batch_ms", "min_batch_size", "max_batch_size"}, ae.Field) {
			f.OptionsOpen = true
		}
	}
}

// uiPreview counts the records and batches a run with the form's params
// would cover. app.js asks for JSON and shows it in place; without
// JavaScript the preview button posts the form and gets the page back with
// the count and every value kept.
func (s *Server) uiPreview(w http.ResponseWriter, r *http.Request, q *uiReq) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	wantJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	n, form, err := parseRunForm(j, q.identity, r.PostForm)
	var pv api.Preview
	if err == nil {
		pv, err = s.countPreview(r.Context(), j, n)
	}
	if err != nil {
		status, msg := http.StatusServiceUnavailable, "No application database is configured, so counts cannot be previewed."
		if !errors.Is(err, errNoPreviewDB) {
			status, msg = s.uiError(r, err)
		}
		if wantJSON {
			writeJSON(w, status, map[string]any{"error": msg, "field": form.ErrorField})
			return
		}
		form.Error, form.PreviewError = "", msg
		form.setError(err)
		s.renderDefinition(w, r, q, status, j, form)
		return
	}
	if wantJSON {
		writeJSON(w, http.StatusOK, pv)
		return
	}
	form.Preview = &pv
	s.renderDefinition(w, r, q, http.StatusOK, j, form)
}

func (s *Server) countPreview(ctx context.Context, j engine.Job, n control.NewRun) (api.Preview, error) {
	size := j.Defaults().BatchSize
	if n.BatchSize != nil {
		if *n.BatchSize < 1 || *n.BatchSize > store.MaxBatchSize {
			return api.Preview{}, &store.ArgumentError{Field: "batch_size", Message: fmt.Sprintf("must be between 1 and %d", store.MaxBatchSize)}
		}
		size = *n.BatchSize
	}
	if _, err := j.CanonicalParams(n.Params); err != nil {
		return api.Preview{}, err
	}
	if s.opts.DB == nil {
		return api.Preview{}, errNoPreviewDB
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	pipe, err := j.Open(ctx, engine.Env{DB: s.opts.DB, Logger: s.log, Resources: s.opts.Resources}, n.Params)
	if err != nil {
		return api.Preview{}, err
	}
	count, est, err := pipe.Count(ctx)
	if err != nil {
		return api.Preview{}, err
	}
	return api.Preview{Records: count, Batches: (count + int64(size) - 1) / int64(size), Estimated: est, BatchSize: size}, nil
}

// uiCreateRun starts (or schedules) a run from the form and goes to its
// page; a bad form comes back with the error and every value kept.
func (s *Server) uiCreateRun(w http.ResponseWriter, r *http.Request, q *uiReq) {
	j, err := s.job(r.Context(), r.PathValue("name"))
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	n, form, err := parseRunForm(j, q.identity, r.PostForm)
	var run store.Run
	if err == nil {
		n.Created = s.createdEvent(q.identity, viaUI)
		run, err = s.ctl.CreateRun(r.Context(), n)
	}
	if err != nil {
		status, msg := s.uiError(r, err)
		form.Error = msg
		form.setError(err)
		s.renderDefinition(w, r, q, status, j, form)
		return
	}
	s.log.Info("run created", zap.Int64("run", run.ID), zap.String("definition", run.Definition), zap.String("by", q.identity))
	msg := fmt.Sprintf("Run %d of %s created.", run.ID, run.Definition)
	if run.StartAt != nil && run.StartAt.After(time.Now()) {
		loc, _ := time.LoadLocation(form.TZ)
		if loc == nil {
			loc = time.UTC
		}
		msg = fmt.Sprintf("Run %d of %s is scheduled for %s (%s).", run.ID, run.Definition,
			run.StartAt.In(loc).Format("2006-01-02 15:04:05 MST"), run.StartAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	s.redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), &flash{Kind: "ok", Message: msg})
}
