package store

import (
	"encoding/json"
	"time"
)

// Kind says what a definition is.
type Kind string

// Definition kinds.
const (
	KindBackfill Kind = "backfill"
	KindFlow     Kind = "flow"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindBackfill || k == KindFlow }

// Limits on run options; larger values are refused as bad input.
const (
	MaxBatchSize   = 1_000_000
	MaxMaxInFlight = 10_000
	MaxMaxAttempts = 1_000
	// MaxSleep and MaxBatchTimeout bound the durations, so a value given
	// in milliseconds cannot overflow time.Duration on the way in.
	MaxSleep         = time.Hour
	MaxBatchTimeout  = 24 * time.Hour
	MaxRowsPerSecond = 10_000_000
	MaxErrorBudget   = 10_000_000
	// MinTargetBatchTime and MaxTargetBatchTime bound an adaptive run's
	// target batch duration (TargetBatchTime).
	MinTargetBatchTime = 10 * time.Millisecond
	MaxTargetBatchTime = 10 * time.Minute
)

// Defaults of an adaptive run's bounds, as factors of its batch size: when
// TargetBatchTime is set and MinBatchSize (MaxBatchSize) is not, the batch
// size may shrink to BatchSize/AdaptiveRange (at least 1) and grow to
// BatchSize*AdaptiveRange (at most MaxBatchSize).
const AdaptiveRange = 100

// RunOptions are the knobs of one run. The engine fills them from the
// definition's defaults and the run's overrides; the store validates and keeps
// them.
type RunOptions struct {
	// BatchSize is the number of keys per batch (1..MaxBatchSize).
	BatchSize int `json:"batch_size"`
	// MaxAttempts is how many times a batch is tried before it is failed.
	MaxAttempts int `json:"max_attempts"`
	// MaxInFlight caps the batches of the run that are queued or running.
	MaxInFlight int `json:"max_in_flight"`
	// Sleep is a pause between two batches of the run (0: none).
	Sleep time.Duration `json:"sleep"`
	// RowsPerSecond limits the run's throughput (0: unlimited).
	RowsPerSecond int `json:"rows_per_second"`
	// BatchTimeout bounds one attempt of a batch (0: no timeout).
	BatchTimeout time.Duration `json:"batch_timeout"`
	// ErrorBudget stops the run once this many batches have failed
	// (0: never stop early; the run ends failed if any batch failed).
	ErrorBudget int `json:"error_budget"`
	// HealthChecks hold planning while the database is unhealthy (see
	// HealthCheck); at most MaxHealthChecks.
	HealthChecks []HealthCheck `json:"health_checks,omitempty"`

	// TargetBatchTime turns on the adaptive batch size (0: off, every
	// batch has BatchSize keys): the scheduler grows or shrinks the size
	// of the batches it plans, starting from BatchSize and within
	// MinBatchSize..MaxBatchSize, so that a batch takes about this long
	// (MinTargetBatchTime..MaxTargetBatchTime).
	TargetBatchTime time.Duration `json:"target_batch_time,omitempty"`
	// MinBatchSize and MaxBatchSize bound an adaptive run's batch size
	// (0: the default, see AdaptiveRange and BatchSizeBounds); set, they
	// must hold 1 <= MinBatchSize <= BatchSize <= MaxBatchSize <=
	// store.MaxBatchSize. Without TargetBatchTime they are not used.
	MinBatchSize int `json:"min_batch_size,omitempty"`
	MaxBatchSize int `json:"max_batch_size,omitempty"`
}

// Adaptive reports whether the run's batch size adapts to TargetBatchTime.
func (o RunOptions) Adaptive() bool { return o.TargetBatchTime > 0 }

// BatchSizeBounds returns the least and greatest batch size of an adaptive
// run: MinBatchSize and MaxBatchSize, or their defaults when 0 —
// BatchSize/AdaptiveRange (at least 1) and BatchSize*AdaptiveRange (at
// most MaxBatchSize). Without a target both are BatchSize.
func (o RunOptions) BatchSizeBounds() (lo, hi int) {
	if !o.Adaptive() {
		return o.BatchSize, o.BatchSize
	}
	lo, hi = o.MinBatchSize, o.MaxBatchSize
	if lo == 0 {
		lo = max(1, o.BatchSize/AdaptiveRange)
	}
	if hi == 0 {
		hi = min(MaxBatchSize, o.BatchSize*AdaptiveRange)
	}
	return lo, hi
}

// WithBatchSizeBounds returns o with an adaptive run's unset bounds filled
// in (see BatchSizeBounds), so the run shows and keeps the bounds it runs
// with. A run without a target is returned as it is.
func (o RunOptions) WithBatchSizeBounds() RunOptions {
	if o.Adaptive() && o.BatchSize >= 1 && o.BatchSize <= MaxBatchSize {
		o.MinBatchSize, o.MaxBatchSize = o.BatchSizeBounds()
	}
	return o
}

// WithDefaults returns o with its zero batch size, max attempts, max in
// flight and batch timeout, and nil health checks, taken from d (a
// definition's defaults).
func (o RunOptions) WithDefaults(d RunOptions) RunOptions {
	if o.BatchSize == 0 {
		o.BatchSize = d.BatchSize
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = d.MaxInFlight
	}
	if o.BatchTimeout == 0 {
		o.BatchTimeout = d.BatchTimeout
	}
	if o.HealthChecks == nil {
		o.HealthChecks = d.HealthChecks
	}
	return o
}

// Validate reports the first option that is out of range.
func (o RunOptions) Validate() error {
	switch {
	case o.BatchSize < 1 || o.BatchSize > MaxBatchSize:
		return argErr("batch_size", "must be between 1 and %d, got %d", MaxBatchSize, o.BatchSize)
	case o.MaxAttempts < 1 || o.MaxAttempts > MaxMaxAttempts:
		return argErr("max_attempts", "must be between 1 and %d, got %d", MaxMaxAttempts, o.MaxAttempts)
	case o.MaxInFlight < 1 || o.MaxInFlight > MaxMaxInFlight:
		return argErr("max_in_flight", "must be between 1 and %d, got %d", MaxMaxInFlight, o.MaxInFlight)
	case o.Sleep < 0 || o.Sleep > MaxSleep:
		return argErr("sleep", "must be between 0 and %s, got %s", MaxSleep, o.Sleep)
	case o.RowsPerSecond < 0 || o.RowsPerSecond > MaxRowsPerSecond:
		return argErr("rows_per_second", "must be between 0 (unlimited) and %d, got %d", MaxRowsPerSecond, o.RowsPerSecond)
	case o.BatchTimeout < 0 || o.BatchTimeout > MaxBatchTimeout:
		return argErr("batch_timeout", "must be between 0 (none) and %s, got %s", MaxBatchTimeout, o.BatchTimeout)
	case o.ErrorBudget < 0 || o.ErrorBudget > MaxErrorBudget:
		return argErr("error_budget", "must be between 0 and %d, got %d", MaxErrorBudget, o.ErrorBudget)
	}
	if err := o.validateAdaptive(); err != nil {
		return err
	}
	return ValidateHealthChecks(o.HealthChecks)
}

// validateAdaptive checks the adaptive batch size's target and bounds. The
// bounds alone (no target) are only checked to be in range, so a run may
// turn a definition's adaptive default off with a zero target.
func (o RunOptions) validateAdaptive() error {
	switch {
	case o.TargetBatchTime != 0 && (o.TargetBatchTime < MinTargetBatchTime || o.TargetBatchTime > MaxTargetBatchTime):
		return argErr("target_batch_time", "must be 0 (off) or between %s and %s, got %s", MinTargetBatchTime, MaxTargetBatchTime, o.TargetBatchTime)
	case o.MinBatchSize < 0 || o.MinBatchSize > MaxBatchSize:
		return argErr("min_batch_size", "must be 0 (the default) or between 1 and %d, got %d", MaxBatchSize, o.MinBatchSize)
	case o.MaxBatchSize < 0 || o.MaxBatchSize > MaxBatchSize:
		return argErr("max_batch_size", "must be 0 (the default) or between 1 and %d, got %d", MaxBatchSize, o.MaxBatchSize)
	case o.MinBatchSize > 0 && o.MaxBatchSize > 0 && o.MinBatchSize > o.MaxBatchSize:
		return argErr("min_batch_size", "must not be above max_batch_size (%d), got %d", o.MaxBatchSize, o.MinBatchSize)
	case !o.Adaptive():
		return nil
	case o.MinBatchSize > o.BatchSize:
		return argErr("min_batch_size", "must not be above batch_size (%d), the size an adaptive run starts from; got %d", o.BatchSize, o.MinBatchSize)
	case o.MaxBatchSize > 0 && o.MaxBatchSize < o.BatchSize:
		return argErr("max_batch_size", "must not be below batch_size (%d), the size an adaptive run starts from; got %d", o.BatchSize, o.MaxBatchSize)
	}
	return nil
}

// Counters are a run's totals, kept on the run and updated in the same atomic
// step as every batch transition, so they are exact and read in O(1).
type Counters struct {
	BatchesPending   int64 `json:"batches_pending"`
	BatchesEnqueued  int64 `json:"batches_enqueued"`
	BatchesRunning   int64 `json:"batches_running"`
	BatchesSucceeded int64 `json:"batches_succeeded"`
	BatchesFailed    int64 `json:"batches_failed"`
	BatchesCancelled int64 `json:"batches_cancelled"`

	// Row counts add up over succeeded batches only.
	RowsRead    int64 `json:"rows_read"`
	RowsWritten int64 `json:"rows_written"`
	RowsSkipped int64 `json:"rows_skipped"`
}

// Batches returns the number of the run's batches in state s.
func (c Counters) Batches(s BatchState) int64 {
	switch s {
	case BatchPending:
		return c.BatchesPending
	case BatchEnqueued:
		return c.BatchesEnqueued
	case BatchRunning:
		return c.BatchesRunning
	case BatchSucceeded:
		return c.BatchesSucceeded
	case BatchFailed:
		return c.BatchesFailed
	case BatchCancelled:
		return c.BatchesCancelled
	}
	return 0
}

// BatchesTotal is the number of batches planned so far.
func (c Counters) BatchesTotal() int64 {
	return c.BatchesPending + c.BatchesEnqueued + c.BatchesRunning +
		c.BatchesSucceeded + c.BatchesFailed + c.BatchesCancelled
}

// InFlight is the number of batches queued or running.
func (c Counters) InFlight() int64 {
	return c.BatchesPending + c.BatchesEnqueued + c.BatchesRunning
}

// Run is one execution of a definition with its params.
type Run struct {
	ID         int64           `json:"id"`
	Definition string          `json:"definition"`
	Kind       Kind            `json:"kind"`
	Params     json.RawMessage `json:"params"`
	// SpecVersion is the version of the spec a run of a spec flow runs
	// with (0 for code definitions).
	SpecVersion int64      `json:"spec_version,omitempty"`
	State       RunState   `json:"state"`
	CreatedBy   string     `json:"created_by"`
	Options     RunOptions `json:"options"`

	// StartAt is when the run should start; nil means as soon as possible.
	StartAt *time.Time `json:"start_at,omitempty"`

	// Total is the number of records in scope, or -1 when unknown;
	// TotalEstimated says it is an estimate (a huge table).
	Total          int64 `json:"total"`
	TotalEstimated bool  `json:"total_estimated"`

	// PlanCursor is the encoded upper bound of the last planned batch ("" before
	// the first); PlanDone says every batch has been planned.
	PlanCursor string `json:"plan_cursor"`
	PlanDone   bool   `json:"plan_done"`

	Counters

	// Error summarises why the run failed.
	Error string `json:"error,omitempty"`

	// Held, when set, says why the scheduler holds the running run's
	// planning back (a failing health check); nil when it does not.
	Held *RunHold `json:"held,omitempty"`

	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// NewRun is what CreateRun needs. The run starts in state scheduled.
type NewRun struct {
	Definition string
	Kind       Kind
	Params     json.RawMessage // JSON object; nil is stored as {}
	// SpecVersion is the spec version a spec flow's run runs with.
	SpecVersion int64
	CreatedBy   string
	Options     RunOptions
	StartAt     *time.Time
}

// Validate reports the first field of n that the store refuses.
func (n NewRun) Validate() error {
	if n.Definition == "" {
		return argErr("definition", "must not be empty")
	}
	if len(n.Definition) > 200 {
		return argErr("definition", "must be at most 200 bytes")
	}
	if !n.Kind.Valid() {
		return argErr("kind", "must be %q or %q, got %q", KindBackfill, KindFlow, n.Kind)
	}
	if len(n.CreatedBy) > 200 {
		return argErr("created_by", "must be at most 200 bytes")
	}
	if n.SpecVersion < 0 {
		return argErr("spec_version", "must not be negative, got %d", n.SpecVersion)
	}
	if len(n.Params) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(n.Params, &obj); err != nil || obj == nil {
			return argErr("params", "must be a JSON object")
		}
	}
	return n.Options.Validate()
}

// TransitionOptions carry what a run transition records besides its state.
type TransitionOptions struct {
	// Error is the run's error summary (kept when moving to failed).
	Error string
	// From, when set, is the only state the run may be moved from.
	From RunState
}
