// Package control is how people drive runs — create, pause, resume, cancel,
// retry failed batches — and read their progress. The web API and the CLI
// call it; every change goes through the store's atomic operations and then
// tells the scheduler (an event), so it acts at once.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// Controller changes runs.
type Controller struct {
	Store    store.Store
	Registry *engine.Registry // default engine.DefaultRegistry
	Events   *events.Bus      // may be nil
	// Defaults are the process's DRIPFLOW_DEFAULT_* run options, applied
	// to options neither the run nor its definition sets (defaults.go).
	Defaults Defaults
	// TracerProvider records each run's creation as the root span of its
	// trace (see trace.go); nil: tracing off.
	TracerProvider trace.TracerProvider
}

func (c *Controller) registry() *engine.Registry {
	if c.Registry == nil {
		return engine.DefaultRegistry
	}
	return c.Registry
}

// NewRun is a request to start a definition. Nil overrides keep the
// definition's defaults.
type NewRun struct {
	Definition    string
	Params        json.RawMessage
	CreatedBy     string
	StartAt       *time.Time
	BatchSize     *int
	MaxInFlight   *int
	MaxAttempts   *int
	RowsPerSecond *int
	Sleep         *time.Duration
	BatchTimeout  *time.Duration
	ErrorBudget   *int
	// HealthChecks are the run's own database health checks, added to its
	// definition's: one that checks the same thing (kind, connection,
	// table) replaces the definition's. Checks of kind sql are refused
	// (*store.ArgumentError): arbitrary SQL comes only from Go definitions,
	// never from a request — except a definition's own sql check repeated
	// unchanged (what a re-run sends back).
	HealthChecks []store.HealthCheck
	// TargetBatchTime turns the adaptive batch size on (0: off), within
	// MinBatchSize..MaxBatchSize (0: the defaults, see
	// store.RunOptions.BatchSizeBounds).
	TargetBatchTime *time.Duration
	MinBatchSize    *int
	MaxBatchSize    *int
	// Created, when set, gives the run's "created" timeline event. It is
	// written before the run is announced, so a scheduler that sees the run
	// and starts it writes "started" after it.
	Created func(store.Run) store.RunEvent
}

// CreateRun validates the request (unknown definition, invalid params and
// out-of-range options are errors naming the field, and nothing is created)
// and creates the run. A flow defined as a spec runs with its current
// version (Run.SpecVersion). A flow that already has a live run is the
// store's *store.FlowBusyError, returned as it is (it matches
// store.ErrFlowBusy and store.ErrConflict): the store checks and inserts in
// one step, so of two concurrent creations one fails.
func (c *Controller) CreateRun(ctx context.Context, n NewRun) (store.Run, error) {
	start := time.Now()
	job, err := c.registry().Resolve(ctx, n.Definition, 0)
	if errors.Is(err, engine.ErrUnknownDefinition) {
		return store.Run{}, &store.ArgumentError{Field: "definition", Message: fmt.Sprintf("no definition named %q", n.Definition)}
	}
	if err != nil {
		return store.Run{}, err
	}
	def := job.Definition()
	p, err := job.CanonicalParams(n.Params)
	if err != nil {
		return store.Run{}, err
	}
	o, _ := c.EffectiveDefaults(job)
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&o.BatchSize, n.BatchSize)
	set(&o.MaxInFlight, n.MaxInFlight)
	set(&o.MaxAttempts, n.MaxAttempts)
	set(&o.RowsPerSecond, n.RowsPerSecond)
	set(&o.ErrorBudget, n.ErrorBudget)
	if n.Sleep != nil {
		o.Sleep = *n.Sleep
	}
	if n.BatchTimeout != nil {
		o.BatchTimeout = *n.BatchTimeout
	}
	if n.TargetBatchTime != nil {
		o.TargetBatchTime = *n.TargetBatchTime
	}
	set(&o.MinBatchSize, n.MinBatchSize)
	set(&o.MaxBatchSize, n.MaxBatchSize)
	// The run keeps (and shows) the bounds it adapts within.
	o = o.WithBatchSizeBounds()
	if o.HealthChecks, err = mergeHealthChecks(o.HealthChecks, n.HealthChecks); err != nil {
		return store.Run{}, err
	}
	r, err := c.Store.CreateRun(ctx, store.NewRun{
		Definition:  n.Definition,
		Kind:        def.Kind,
		Params:      p,
		SpecVersion: def.Version, // 0 for code definitions
		CreatedBy:   n.CreatedBy,
		Options:     o,
		StartAt:     n.StartAt,
	})
	if err != nil {
		return store.Run{}, err
	}
	if n.Created != nil {
		timeline.Record(ctx, c.Store, nil, n.Created(r))
	}
	c.Events.RunChanged(ctx, r.ID)
	c.traceCreated(ctx, start, r)
	return r, nil
}

// mergeHealthChecks adds a run's own checks to its definition's (def); a
// run's check of the same target replaces the definition's. A run's sql
// check that is not one of the definition's is refused.
func mergeHealthChecks(def, own []store.HealthCheck) ([]store.HealthCheck, error) {
	if len(own) == 0 {
		return def, nil
	}
	for i, c := range own {
		if c.Kind == store.HealthSQL && !slices.Contains(def, c) {
			return nil, &store.ArgumentError{Field: fmt.Sprintf("health_checks[%d].kind", i),
				Message: "sql checks can only be declared in a Go definition (code), never through the API, the UI or a flow spec: they run arbitrary SQL on the database"}
		}
	}
	// The request's own checks are validated first, so an error names the
	// request's field rather than its place among the definition's.
	if err := store.ValidateHealthChecks(own); err != nil {
		return nil, err
	}
	out := append([]store.HealthCheck(nil), def...)
	for _, c := range own {
		if j := slices.IndexFunc(out, c.SameTarget); j >= 0 {
			out[j] = c
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Pause stops new batches of a running run from starting; batches in flight
// finish.
func (c *Controller) Pause(ctx context.Context, id int64) (store.Run, error) {
	return c.transition(ctx, id, store.RunPaused)
}

// Resume continues a paused run. Any other run is a *store.TransitionError;
// a scheduled run's says to start it now or reschedule it (resuming it
// used to start it before its time).
func (c *Controller) Resume(ctx context.Context, id int64) (store.Run, error) {
	r, err := c.Store.TransitionRun(ctx, id, store.RunRunning, &store.TransitionOptions{From: store.RunPaused})
	if err != nil {
		var te *store.TransitionError
		if errors.As(err, &te) && te.From == string(store.RunScheduled) {
			te.Hint = "only a paused run can be resumed; start a scheduled run now with start, or change its time with reschedule"
			return r, fmt.Errorf("resume run %d: %w", id, te)
		}
		return r, err
	}
	c.Events.RunResumed(ctx, id)
	return r, nil
}

// Start starts a scheduled run now, before its start time. Any other run is
// a *store.TransitionError (a paused one is resumed, not started).
func (c *Controller) Start(ctx context.Context, id int64) (store.Run, error) {
	r, err := c.Store.TransitionRun(ctx, id, store.RunRunning, &store.TransitionOptions{From: store.RunScheduled})
	if err != nil {
		var te *store.TransitionError
		if errors.As(err, &te) && te.From == string(store.RunPaused) {
			te.Hint = "the run has started already; resume it"
			return r, fmt.Errorf("start run %d: %w", id, te)
		}
		return r, err
	}
	c.Events.RunChanged(ctx, id)
	return r, nil
}

// Reschedule moves a scheduled run's start time to at (a time in the past
// starts it at once). Any other run is a *store.TransitionError; a zero at is
// a *store.ArgumentError for "start_at".
func (c *Controller) Reschedule(ctx context.Context, id int64, at time.Time) (store.Run, error) {
	if at.IsZero() {
		return store.Run{}, &store.ArgumentError{Field: "start_at", Message: "must be a time (RFC 3339)"}
	}
	r, err := c.Store.RescheduleRun(ctx, id, at)
	if err != nil {
		return r, err
	}
	c.Events.RunChanged(ctx, id)
	return r, nil
}

func (c *Controller) transition(ctx context.Context, id int64, to store.RunState) (store.Run, error) {
	r, err := c.Store.TransitionRun(ctx, id, to, nil)
	if err != nil {
		return r, err
	}
	c.Events.RunChanged(ctx, id)
	return r, nil
}

// Cancel cancels the run's batches that have not started; batches in flight
// finish, then the run is cancelled.
func (c *Controller) Cancel(ctx context.Context, id int64) (store.Run, error) {
	r, err := c.Store.CancelRun(ctx, id)
	if err != nil {
		return r, err
	}
	c.Events.RunChanged(ctx, id)
	return r, nil
}

// ErrNothingToRetry means the run has no failed batch (or the named batch is
// not failed). It matches store.ErrConflict.
var ErrNothingToRetry = fmt.Errorf("no failed batch to retry: %w", store.ErrConflict)

// Retry re-enqueues the run's failed batches — all of them when seq is nil —
// and puts a failed run back to running.
func (c *Controller) Retry(ctx context.Context, id int64, seq *int64) (int64, error) {
	n, err := c.Store.RetryBatches(ctx, id, seq)
	if err != nil {
		var te *store.TransitionError
		if seq != nil && errors.As(err, &te) && te.Entity == "batch" {
			return 0, fmt.Errorf("batch %s is %s: %w", store.BatchID(id, *seq), te.From, ErrNothingToRetry)
		}
		return 0, err
	}
	r, err := c.Store.GetRun(ctx, id)
	if err != nil {
		return n, err
	}
	if n == 0 && r.State != store.RunRunning {
		return 0, ErrNothingToRetry
	}
	c.Events.RunResumed(ctx, id)
	return n, nil
}

// Progress is a run's progress as people read it.
type Progress struct {
	// Total is the number of records in scope (-1: unknown);
	// TotalEstimated says it is an estimate.
	Total          int64 `json:"total"`
	TotalEstimated bool  `json:"total_estimated"`
	// Processed counts records of succeeded batches.
	Processed int64 `json:"processed"`
	// Percent is Processed/Total (0..100), or -1 when the total is unknown.
	Percent float64                    `json:"percent"`
	Batches map[store.BatchState]int64 `json:"batches"`
	// Rate is records per second since the run started.
	Rate float64 `json:"rate"`
	// ETA is the estimated time left in seconds of a running run, at most
	// as fast as its rows-per-second limit (-1: unknown, or not running).
	ETA     float64 `json:"eta_seconds"`
	Elapsed float64 `json:"elapsed_seconds"`
}

// ProgressOf computes a run's progress from its counters (O(1)).
func ProgressOf(r store.Run, now time.Time) Progress {
	p := Progress{
		Total: r.Total, TotalEstimated: r.TotalEstimated,
		Processed: r.RowsRead,
		Batches:   map[store.BatchState]int64{},
		Percent:   -1, ETA: -1,
	}
	for _, s := range store.BatchStates {
		p.Batches[s] = r.Batches(s)
	}
	if r.StartedAt != nil {
		end := now
		if r.FinishedAt != nil {
			end = *r.FinishedAt
		}
		p.Elapsed = end.Sub(*r.StartedAt).Seconds()
		if p.Elapsed > 0 {
			p.Rate = float64(r.RowsRead) / p.Elapsed
		}
	}
	switch {
	case r.State == store.RunSucceeded:
		p.Percent, p.ETA = 100, 0
	case r.Total > 0:
		p.Percent = min(100, 100*float64(p.Processed)/float64(r.Total))
		// Only a running run moves towards its end; its rate to come is
		// at most its rows-per-second limit.
		rate := p.Rate
		if lim := float64(r.Options.RowsPerSecond); lim > 0 && lim < rate {
			rate = lim
		}
		if r.State == store.RunRunning && rate > 0 {
			p.ETA = max(0, float64(r.Total-p.Processed)/rate)
		}
	case r.Total == 0:
		p.Percent = 100
	}
	return p
}
