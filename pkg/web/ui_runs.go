package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// Bounds of the work one page view may do against the store.
const (
	runsPageSize    = 50
	searchScanLimit = 2000 // runs a search looks through per page view
	statsScanLimit  = 5000 // runs the 7-day stats look through
	batchesPageSize = 50
	chartBatches    = 2000 // most recent batches the throughput chart uses
	statsCacheTTL   = 5 * time.Second
)

type runsFilter struct {
	Status     string
	Definition string
	// Kind is "backfill", "flow" or "" (both), from the query or the
	// cookie that remembers it (see runsKind).
	Kind string
	Mine bool
	Q    string
}

func (f runsFilter) query(cursor string) string {
	v := url.Values{}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	if f.Definition != "" {
		v.Set("definition", f.Definition)
	}
	if f.Kind != "" {
		v.Set("kind", f.Kind)
	}
	if f.Mine {
		v.Set("mine", "1")
	}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

type runsData struct {
	Filter      runsFilter
	States      []store.RunState
	Definitions []string
	Runs        []api.Run
	NextURL     string
	FirstURL    string
	// Searched is how many runs a search looked through.
	Searched int
	Stats    *weekStats
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	qs := r.URL.Query()
	f := runsFilter{
		Status: qs.Get("status"), Definition: strings.TrimSpace(qs.Get("definition")),
		Mine: qs.Get("mine") == "1" || qs.Get("mine") == "true", Q: strings.TrimSpace(qs.Get("q")),
	}
	kind, err := s.runsKind(w, r)
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	f.Kind = string(kind)
	filter := store.RunFilter{Definition: f.Definition, Kind: kind, Cursor: qs.Get("cursor")}
	if f.Mine {
		filter.CreatedBy = q.identity
	}
	if f.Status != "" {
		st, err := store.ParseRunState(f.Status)
		if err != nil {
			s.uiFailErr(w, r, q, err)
			return
		}
		filter.States = []store.RunState{st}
	}
	data := runsData{Filter: f, States: store.RunStates}
	for _, j := range s.opts.Registry.Jobs() {
		data.Definitions = append(data.Definitions, j.Definition().Name)
	}
	var (
		runs []store.Run
		next string
	)
	if f.Q != "" {
		runs, next, data.Searched, err = s.searchRuns(r.Context(), filter, f.Q)
	} else {
		filter.Limit = runsPageSize
		var pg store.Page[store.Run]
		pg, err = s.opts.Store.ListRuns(r.Context(), filter)
		runs, next = pg.Items, pg.NextCursor
	}
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	now := time.Now()
	for _, run := range runs {
		data.Runs = append(data.Runs, runOf(run, now))
	}
	if next != "" {
		data.NextURL = s.base + "/runs" + f.query(next)
	}
	if filter.Cursor != "" {
		data.FirstURL = s.base + "/runs" + f.query("")
	}
	if st, err := s.weekStats(r.Context()); err == nil {
		data.Stats = st
	} else {
		s.log.Warn("7-day stats", zap.Error(err))
	}
	p := s.newPage(w, r, q, "Runs", "runs")
	p.Data = data
	s.render(w, r, http.StatusOK, "runs", p)
}

// searchRuns looks through the filtered runs, newest first, for ones
// whose id, definition, creator, state, params or error contain term. It
// stops at a page of matches or after searchScanLimit runs; the cursor
// continues after the last run it looked at, so paging stays keyset-based.
func (s *Server) searchRuns(ctx context.Context, f store.RunFilter, term string) ([]store.Run, string, int, error) {
	needle := strings.ToLower(term)
	var (
		out     []store.Run
		scanned int
	)
	f.Limit = 200
	for {
		pg, err := s.opts.Store.ListRuns(ctx, f)
		if err != nil {
			return nil, "", scanned, err
		}
		for i, run := range pg.Items {
			scanned++
			match := runMatches(run, needle)
			if !match && run.BatchesFailed > 0 {
				// The reason a run failed is in its batches' errors.
				if match, err = s.failedBatchesMatch(ctx, run.ID, needle); err != nil {
					return nil, "", scanned, err
				}
			}
			if match {
				out = append(out, run)
			}
			last := i == len(pg.Items)-1
			if len(out) == runsPageSize || scanned >= searchScanLimit {
				if last && pg.NextCursor == "" {
					return out, "", scanned, nil
				}
				return out, store.EncodeCursor(run.ID), scanned, nil
			}
		}
		if pg.NextCursor == "" {
			return out, "", scanned, nil
		}
		f.Cursor = pg.NextCursor
	}
}

// failedBatchesMatch reports whether the error of one of the run's failed
// batches (the first 100) contains needle.
func (s *Server) failedBatchesMatch(ctx context.Context, runID int64, needle string) (bool, error) {
	pg, err := s.opts.Store.ListBatches(ctx, runID, store.BatchFilter{States: []store.BatchState{store.BatchFailed}, Limit: 100})
	if err != nil {
		return false, err
	}
	for _, b := range pg.Items {
		if strings.Contains(strings.ToLower(b.Error), needle) {
			return true, nil
		}
	}
	return false, nil
}

func runMatches(r store.Run, needle string) bool {
	if strconv.FormatInt(r.ID, 10) == needle {
		return true
	}
	for _, hay := range []string{r.Definition, r.CreatedBy, string(r.State), string(r.Params), r.Error} {
		if strings.Contains(strings.ToLower(hay), needle) {
			return true
		}
	}
	return false
}

// weekStats summarise the runs created in the last seven days.
type weekStats struct {
	Runs, Succeeded, Failed, Cancelled, Active int64
	Rows                                       int64
	// ActiveMore says there are more than Active active runs.
	ActiveMore bool
	// SuccessRate is succeeded / finished in percent, -1 with none finished.
	SuccessRate float64
	// Partial says the scan stopped at statsScanLimit runs.
	Partial bool
	Days    []dayStat
}

// dayStat is one day's column of the stats chart (an SVG of 7 stacked
// bars, laid out here so the template only prints numbers).
type dayStat struct {
	Label                            string
	Title                            string
	Total, Succeeded, Failed, Others int64
	X, LabelY, TotalX, TotalY        int
	YOk, HOk, YFail, HFail           int
	YOther, HOther                   int
}

func (s *Server) weekStats(ctx context.Context) (*weekStats, error) {
	s.ui.mu.Lock()
	if s.ui.stats != nil && time.Since(s.ui.statsAt) < statsCacheTTL {
		st := s.ui.stats
		s.ui.mu.Unlock()
		return st, nil
	}
	s.ui.mu.Unlock()

	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	since := today.AddDate(0, 0, -6)
	st := &weekStats{SuccessRate: -1, Days: make([]dayStat, 7)}
	for i := range st.Days {
		st.Days[i].Label = since.AddDate(0, 0, i).Format("Mon 2")
	}
	f := store.RunFilter{Limit: 1000}
	scanned := 0
scan:
	for {
		pg, err := s.opts.Store.ListRuns(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range pg.Items {
			if r.CreatedAt.Before(since) {
				break scan
			}
			if scanned++; scanned > statsScanLimit {
				st.Partial = true
				break scan
			}
			st.Runs++
			st.Rows += r.RowsRead
			d := &st.Days[min(6, max(0, int(r.CreatedAt.UTC().Sub(since)/(24*time.Hour))))]
			d.Total++
			switch r.State {
			case store.RunSucceeded:
				st.Succeeded++
				d.Succeeded++
			case store.RunFailed:
				st.Failed++
				d.Failed++
			case store.RunCancelled:
				st.Cancelled++
			}
		}
		if pg.NextCursor == "" {
			break
		}
		f.Cursor = pg.NextCursor
	}
	active, err := s.opts.Store.ListRuns(ctx, store.RunFilter{Limit: 1000,
		States: []store.RunState{store.RunScheduled, store.RunRunning, store.RunPaused, store.RunCancelling}})
	if err != nil {
		return nil, err
	}
	st.Active, st.ActiveMore = int64(len(active.Items)), active.NextCursor != ""
	if finished := st.Succeeded + st.Failed; finished > 0 {
		st.SuccessRate = 100 * float64(st.Succeeded) / float64(finished)
	}
	layoutDays(st.Days)

	s.ui.mu.Lock()
	s.ui.stats, s.ui.statsAt = st, time.Now()
	s.ui.mu.Unlock()
	return st, nil
}

// layoutDays computes the bars of the 7-day chart: a 280×90 viewBox, 40
// units per day, bars 60 high at most, labels below.
func layoutDays(days []dayStat) {
	var top int64 = 1
	for _, d := range days {
		top = max(top, d.Total)
	}
	const base, height = 70, 60
	for i := range days {
		d := &days[i]
		d.X = i*40 + 8
		h := func(n int64) int { return int((n*height + top - 1) / top) }
		d.HOk, d.HFail = h(d.Succeeded), h(d.Failed)
		d.Others = d.Total - d.Succeeded - d.Failed
		d.HOther = h(d.Others)
		d.YOk = base - d.HOk
		d.YFail = d.YOk - d.HFail
		d.YOther = d.YFail - d.HOther
		d.LabelY = base + 14
		d.TotalX = d.X + 12
		d.TotalY = d.YOther - 3
		d.Title = fmt.Sprintf("%s: %d runs, %d succeeded, %d failed", d.Label, d.Total, d.Succeeded, d.Failed)
	}
}

type stateCount struct {
	State string
	Count int64
}

type runData struct {
	Run          api.Run
	Terminal     bool
	Batches      []api.Batch
	BatchStatus  string
	BatchStates  []stateCount
	NextBatches  string
	FirstBatches string
	States       []store.BatchState
	HasDef       bool
	// FirstFailed is the run's first failed batch (with its error), so
	// the reason a run failed shows at the top of its page.
	FirstFailed *api.Batch
	FailedCount int64
	ChartURL    string
	SelfURL     string
	// Timeline is the run's events and the "failed before" hint.
	Timeline timelineView
	// Which actions apply now; app.js keeps them in step with live updates.
	CanPause, CanResume, CanRetry, CanCancel, CanStart bool
}

func (s *Server) loadRun(w http.ResponseWriter, r *http.Request, q *uiReq) (store.Run, bool) {
	id, err := pathID(r, "id")
	if err == nil {
		var run store.Run
		if run, err = s.opts.Store.GetRun(r.Context(), id); err == nil {
			return run, true
		}
	}
	s.uiFailErr(w, r, q, err)
	return store.Run{}, false
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, q *uiReq) {
	run, ok := s.loadRun(w, r, q)
	if !ok {
		return
	}
	qs := r.URL.Query()
	status := qs.Get("batches")
	f := store.BatchFilter{Limit: batchesPageSize, Cursor: qs.Get("bcursor")}
	if status != "" {
		st, err := store.ParseBatchState(status)
		if err != nil {
			s.uiFailErr(w, r, q, err)
			return
		}
		f.States = []store.BatchState{st}
	}
	pg, err := s.opts.Store.ListBatches(r.Context(), run.ID, f)
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	a := runOf(run, time.Now())
	a.BatchSizeNow = s.batchSizeNow(r.Context(), run)
	data := runData{Run: a, Terminal: run.State.Terminal(), BatchStatus: status, States: store.BatchStates,
		ChartURL: fmt.Sprintf("%s/runs/%d/throughput.svg", s.base, run.ID)}
	_, rerr := s.opts.Registry.Resolve(r.Context(), run.Definition, run.SpecVersion)
	data.HasDef = rerr == nil
	data.CanPause = run.State == store.RunRunning
	data.CanResume = run.State == store.RunPaused
	data.CanStart = run.State == store.RunScheduled
	data.CanCancel = run.State == store.RunScheduled || run.State == store.RunRunning || run.State == store.RunPaused
	data.CanRetry = run.BatchesFailed > 0 && (run.State == store.RunRunning || run.State == store.RunPaused || run.State == store.RunFailed)
	for _, st := range store.BatchStates {
		data.BatchStates = append(data.BatchStates, stateCount{string(st), run.Batches(st)})
	}
	for _, b := range pg.Items {
		data.Batches = append(data.Batches, s.batchOf(b, run.Definition))
	}
	data.Timeline = s.runTimelineView(r.Context(), run, qs.Get("timeline") == "all")
	if run.BatchesFailed > 0 {
		failed, err := s.opts.Store.ListBatches(r.Context(), run.ID, store.BatchFilter{States: []store.BatchState{store.BatchFailed}, Limit: 1})
		if err != nil {
			s.uiFailErr(w, r, q, err)
			return
		}
		if len(failed.Items) > 0 {
			b := s.batchOf(failed.Items[0], run.Definition)
			data.FirstFailed, data.FailedCount = &b, run.BatchesFailed
		}
	}
	link := func(cursor string) string {
		v := url.Values{}
		if status != "" {
			v.Set("batches", status)
		}
		if cursor != "" {
			v.Set("bcursor", cursor)
		}
		u := fmt.Sprintf("%s/runs/%d", s.base, run.ID)
		if len(v) > 0 {
			u += "?" + v.Encode()
		}
		return u + "#batches"
	}
	data.SelfURL = link(f.Cursor)
	if pg.NextCursor != "" {
		data.NextBatches = link(pg.NextCursor)
	}
	if f.Cursor != "" {
		data.FirstBatches = link("")
	}
	p := s.newPage(w, r, q, fmt.Sprintf("Run %d · %s", run.ID, run.Definition), "runs")
	p.Data = data
	s.render(w, r, http.StatusOK, "run", p)
}

// runAction performs a control action from a form and goes back to the
// run's page with the outcome as a flash message.
func (s *Server) runAction(w http.ResponseWriter, r *http.Request, q *uiReq, do func(context.Context, int64) (string, error)) {
	id, err := pathID(r, "id")
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	back := fmt.Sprintf("/runs/%d", id)
	msg, err := do(r.Context(), id)
	if err != nil {
		status, text := s.uiError(r, err)
		if status == http.StatusNotFound {
			s.uiFail(w, r, q, status, text)
			return
		}
		s.redirect(w, r, back, &flash{Kind: "error", Message: text})
		return
	}
	s.log.Info("UI run action", zap.Int64("run", id), zap.String("what", msg), zap.String("by", q.identity))
	s.redirect(w, r, back, &flash{Kind: "ok", Message: msg})
}

func (s *Server) uiPause(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		_, err := s.ctl.Pause(ctx, id)
		s.noteUI(ctx, err, q, "paused", id)
		return fmt.Sprintf("Run %d paused: no new batch starts; batches in flight finish.", id), err
	})
}

func (s *Server) uiResume(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		_, err := s.ctl.Resume(ctx, id)
		s.noteUI(ctx, err, q, "resumed", id)
		return fmt.Sprintf("Run %d resumed.", id), err
	})
}

func (s *Server) uiCancel(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		run, err := s.ctl.Cancel(ctx, id)
		s.noteUI(ctx, err, q, "cancelled", id)
		if run.State == store.RunCancelling {
			return fmt.Sprintf("Run %d is cancelling: batches in flight finish first.", id), err
		}
		return fmt.Sprintf("Run %d cancelled.", id), err
	})
}

func (s *Server) uiRetry(w http.ResponseWriter, r *http.Request, q *uiReq) {
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		n, err := s.ctl.Retry(ctx, id, nil)
		if err == nil {
			s.noteRetry(ctx, q.identity, viaUI, id, nil, n)
		}
		return fmt.Sprintf("Retrying %d failed batch%s of run %d.", n, plural(n, "", "es"), id), err
	})
}

// uiRunAgain starts a new run of the same definition with the same params
// and options (not its start time) and goes to its page.
func (s *Server) uiRunAgain(w http.ResponseWriter, r *http.Request, q *uiReq) {
	old, ok := s.loadRun(w, r, q)
	if !ok {
		return
	}
	o := old.Options
	run, err := s.ctl.CreateRun(r.Context(), control.NewRun{
		Definition: old.Definition, Params: old.Params, CreatedBy: q.identity,
		BatchSize: &o.BatchSize, MaxInFlight: &o.MaxInFlight, MaxAttempts: &o.MaxAttempts,
		RowsPerSecond: &o.RowsPerSecond, Sleep: &o.Sleep, BatchTimeout: &o.BatchTimeout, ErrorBudget: &o.ErrorBudget,
		TargetBatchTime: &o.TargetBatchTime, MinBatchSize: &o.MinBatchSize, MaxBatchSize: &o.MaxBatchSize,
		HealthChecks: o.HealthChecks,
		Created:      s.createdEvent(q.identity, viaUI),
	})
	if err != nil {
		_, msg := s.uiError(r, err)
		s.redirect(w, r, fmt.Sprintf("/runs/%d", old.ID), &flash{Kind: "error", Message: "Could not run it again: " + msg})
		return
	}
	s.log.Info("run created", zap.Int64("run", run.ID), zap.Int64("again_of", old.ID), zap.String("definition", run.Definition), zap.String("by", q.identity))
	s.redirect(w, r, fmt.Sprintf("/runs/%d", run.ID), &flash{Kind: "ok", Message: fmt.Sprintf("Run %d of %s created with the params and options of run %d.", run.ID, run.Definition, old.ID)})
}

func (s *Server) uiRetryBatch(w http.ResponseWriter, r *http.Request, q *uiReq) {
	seq, err := pathID(r, "batch")
	if err != nil {
		s.uiFailErr(w, r, q, err)
		return
	}
	s.runAction(w, r, q, func(ctx context.Context, id int64) (string, error) {
		n, err := s.ctl.Retry(ctx, id, &seq)
		if err == nil {
			s.noteRetry(ctx, q.identity, viaUI, id, &seq, n)
		}
		return fmt.Sprintf("Retrying batch %d of run %d.", seq, id), err
	})
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// throughputSVG draws rows per second over time from the run's most recent
// succeeded batches, each batch's rows spread over the time it ran.
func (s *Server) throughputSVG(w http.ResponseWriter, r *http.Request, q *uiReq) {
	run, ok := s.loadRun(w, r, q)
	if !ok {
		return
	}
	// Batches are numbered 1…N in planning order, so starting after
	// N-chartBatches reads only the most recent ones.
	f := store.BatchFilter{States: []store.BatchState{store.BatchSucceeded}, Limit: store.MaxLimit,
		Cursor: store.EncodeCursor(max(0, run.BatchesTotal()-chartBatches))}
	var points []chartPoint
	for range chartBatches/store.MaxLimit + 1 {
		pg, err := s.opts.Store.ListBatches(r.Context(), run.ID, f)
		if err != nil {
			s.uiFailErr(w, r, q, err)
			return
		}
		for _, b := range pg.Items {
			if b.FinishedAt != nil {
				pt := chartPoint{End: *b.FinishedAt, Rows: b.RowsRead}
				if b.StartedAt != nil {
					pt.Start = *b.StartedAt
				}
				points = append(points, pt)
			}
		}
		if pg.NextCursor == "" {
			break
		}
		f.Cursor = pg.NextCursor
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(throughputChart(points))
}
