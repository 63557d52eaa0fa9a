// Package api holds the JSON types of dripflow's HTTP API v1, shared by the
// server (package web) and the Go client (package client). Ids are strings,
// times RFC 3339, errors {"error": {"code", "message", "field"}}.
//
// It is a leaf: plain structs over the standard library (and package params
// for a definition's params schema), so a program that only talks to the API
// does not link the store, gorm, go-redis or zap. The server converts its
// own types into these (package web).
package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/params"
)

// Error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeInvalid      = "invalid"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable"
)

// Error is the body of every error response.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong and, for invalid input, which field.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RunID is the live run of a flow that refused another run or its
	// deletion (a 409 for one run of a flow at a time).
	RunID string `json:"run_id,omitempty"`
}

// Options are a run's options.
type Options struct {
	BatchSize      int   `json:"batch_size"`
	MaxAttempts    int   `json:"max_attempts"`
	MaxInFlight    int   `json:"max_in_flight"`
	SleepMS        int64 `json:"sleep_ms"`
	RowsPerSecond  int   `json:"rows_per_second"`
	BatchTimeoutMS int64 `json:"batch_timeout_ms"`
	ErrorBudget    int   `json:"error_budget"`
	// TargetBatchMS is an adaptive run's target batch duration (absent:
	// the batch size does not adapt); MinBatchSize and MaxBatchSize are
	// the bounds its batch size adapts within.
	TargetBatchMS int64 `json:"target_batch_ms,omitempty"`
	MinBatchSize  int   `json:"min_batch_size,omitempty"`
	MaxBatchSize  int   `json:"max_batch_size,omitempty"`
	// HealthChecks hold the run's planning while the database is
	// unhealthy (absent: none).
	HealthChecks []HealthCheck `json:"health_checks,omitempty"`
}

// HealthCheck is a database health check of a run: kind replication_lag
// (max_seconds), autovacuum (table), lock_waits (max) or sql (query; only
// Go definitions declare it, a request that sends one is refused with 422).
// Connection names the database checked (absent: the application
// database).
type HealthCheck struct {
	Kind       string  `json:"kind"`
	Name       string  `json:"name,omitempty"`
	Connection string  `json:"connection,omitempty"`
	MaxSeconds float64 `json:"max_seconds,omitempty"`
	Table      string  `json:"table,omitempty"`
	Max        int     `json:"max,omitempty"`
	Query      string  `json:"query,omitempty"`
}

// String says what the check holds the run on: "replication lag > 5 s",
// "autovacuum on public.users", "lock waits > 0", "sql: SELECT …", with
// its name and its connection when set.
func (c HealthCheck) String() string {
	var d string
	switch c.Kind {
	case "replication_lag":
		d = "replication lag > " + strconv.FormatFloat(c.MaxSeconds, 'f', -1, 64) + " s"
	case "autovacuum":
		d = "autovacuum on " + c.Table
	case "lock_waits":
		d = "lock waits > " + strconv.Itoa(c.Max)
	case "sql":
		d = "sql: " + c.Query
	default:
		d = c.Kind
	}
	if c.Name != "" {
		d = c.Name + " (" + d + ")"
	}
	if c.Connection != "" && c.Connection != "default" {
		d += " on " + c.Connection
	}
	return d
}

// Hold says why the scheduler holds a running run's planning back: a
// database health check fails (Reason, e.g. "replication lag 12.3 s > 5 s")
// since Since. No new batch starts until it passes; batches in flight
// finish.
type Hold struct {
	Reason string    `json:"reason"`
	Check  string    `json:"check"`
	Since  time.Time `json:"since"`
}

// Run is a run with its progress.
type Run struct {
	ID         string `json:"id"`
	Definition string `json:"definition"`
	Kind       string `json:"kind"`
	// SpecVersion is the version of a spec flow's spec the run runs with
	// (absent for code definitions).
	SpecVersion int64           `json:"spec_version,omitempty"`
	Status      string          `json:"status"`
	Params      json.RawMessage `json:"params"`
	CreatedBy   string          `json:"created_by"`
	Options     Options         `json:"options"`
	Error       string          `json:"error,omitempty"`
	StartAt     *time.Time      `json:"start_at,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	Progress    Progress        `json:"progress"`
	Rows        Rows            `json:"rows"`
	PlanDone    bool            `json:"plan_done"`
	// Held is set while a running run's planning is held back by a
	// failing database health check.
	Held *Hold `json:"held,omitempty"`
	// BatchSizeNow is the size an adaptive run's batches are planned with
	// now (its last planned batch's); only GET /api/v1/runs/{id} gives it.
	BatchSizeNow int `json:"batch_size_now,omitempty"`
}

// Rows are a run's or a batch's row counts.
type Rows struct {
	Read    int64 `json:"read"`
	Written int64 `json:"written"`
	Skipped int64 `json:"skipped"`
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
	Percent float64 `json:"percent"`
	// Batches counts the run's batches by status (pending, enqueued,
	// running, succeeded, failed, cancelled).
	Batches map[string]int64 `json:"batches"`
	// Rate is records per second since the run started.
	Rate float64 `json:"rate"`
	// ETA is the estimated time left in seconds (-1: unknown).
	ETA     float64 `json:"eta_seconds"`
	Elapsed float64 `json:"elapsed_seconds"`
}

// Batch is one batch (checkpoint) of a run.
type Batch struct {
	RunID      string     `json:"run_id"`
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Lo         string     `json:"lo"`
	Hi         string     `json:"hi"`
	Size       int        `json:"size,omitempty"` // keys the batch was planned with (absent: planned before sizes were kept)
	Attempts   int        `json:"attempts"`
	Retries    int        `json:"retries"`
	Worker     string     `json:"worker,omitempty"`
	Rows       Rows       `json:"rows"`
	DurationMS int64      `json:"duration_ms"`
	Error      string     `json:"error,omitempty"`
	ErrorStack string     `json:"error_stack,omitempty"`
	TaskID     string     `json:"task_id"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	EnqueuedAt *time.Time `json:"enqueued_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Page is one page of a list; NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// Definition is a registered backfill or flow.
type Definition struct {
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Description string          `json:"description"`
	Params      params.Schema   `json:"params"`
	Defaults    Options         `json:"defaults"`
	Config      json.RawMessage `json:"config,omitempty"`
	Runtime     string          `json:"runtime,omitempty"`
	// DefaultsFrom says where the effective defaults of sleep_ms,
	// max_in_flight and rows_per_second come from: "definition", the
	// DRIPFLOW_DEFAULT_* variable that set it, or "built-in".
	DefaultsFrom map[string]string `json:"defaults_from,omitempty"`
}

// Preview is what a run of a definition would cover.
type Preview struct {
	Records   int64 `json:"records"`
	Batches   int64 `json:"batches"`
	Estimated bool  `json:"estimated"`
	BatchSize int   `json:"batch_size"`
}

// Flow origins: where a flow is defined.
const (
	// OriginCode is a flow compiled into the binaries: read-only in the
	// API and the UI.
	OriginCode = "code"
	// OriginSpec is a flow stored as a spec (created with POST
	// /api/v1/flows, the UI or `dripflow flows apply`), versioned.
	OriginSpec = "spec"
)

// Flow is a flow's state.
type Flow struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Origin is OriginCode or OriginSpec.
	Origin string `json:"origin"`
	// Version is a spec flow's latest version (absent for code flows).
	Version            int64      `json:"version,omitempty"`
	Active             bool       `json:"active"`
	Runtime            string     `json:"runtime"`
	Watermark          string     `json:"watermark"`
	WatermarkUpdatedAt *time.Time `json:"watermark_updated_at,omitempty"`
	// MissedTicks counts the runtime's ticks that came due while a run of
	// the flow was still live (so they did not start one).
	MissedTicks    int64      `json:"missed_ticks"`
	LastMissedTick *time.Time `json:"last_missed_tick,omitempty"`
	// Config is a code flow's connector configuration.
	Config json.RawMessage `json:"config,omitempty"`
	// Spec is a spec flow's spec at Version.
	Spec    json.RawMessage `json:"spec,omitempty"`
	LastRun *Run            `json:"last_run,omitempty"`
}

// FlowVersion is one stored version of a spec flow.
type FlowVersion struct {
	Name        string          `json:"name"`
	Version     int64           `json:"version"`
	Description string          `json:"description"`
	Spec        json.RawMessage `json:"spec"`
	CreatedBy   string          `json:"created_by"`
	CreatedAt   time.Time       `json:"created_at"`
}

// FlowValidation is the answer of POST /api/v1/flows/validate for a spec
// that would be accepted (an invalid one is a 422 error naming the field).
type FlowValidation struct {
	Valid bool   `json:"valid"`
	Name  string `json:"name"`
	// Runtime is the spec's runtime as the flow would show it ("once",
	// "every 30s", "cron */5 * * * *").
	Runtime string `json:"runtime"`
	// Delivery is the sink's guarantee (transactional, idempotent or
	// at-least-once).
	Delivery string `json:"delivery,omitempty"`
	// Spec is the spec as it would be stored.
	Spec json.RawMessage `json:"spec"`
}

// CreateRun is the body of POST /api/v1/runs.
type CreateRun struct {
	Definition    string          `json:"definition"`
	Params        json.RawMessage `json:"params,omitempty"`
	BatchSize     *int            `json:"batch_size,omitempty"`
	StartAt       *time.Time      `json:"start_at,omitempty"`
	MaxInFlight   *int            `json:"max_in_flight,omitempty"`
	MaxAttempts   *int            `json:"max_attempts,omitempty"`
	RowsPerSecond *int            `json:"rows_per_second,omitempty"`
	SleepMS       *int64          `json:"sleep_ms,omitempty"`
	ErrorBudget   *int            `json:"error_budget,omitempty"`
	// BatchTimeoutMS bounds one attempt of a batch (0: no timeout).
	BatchTimeoutMS *int64 `json:"batch_timeout_ms,omitempty"`
	// HealthChecks are added to the definition's (one of the same kind,
	// connection and table replaces the definition's); kind sql is refused.
	HealthChecks []HealthCheck `json:"health_checks,omitempty"`
	// TargetBatchMS turns the adaptive batch size on (10..600000; 0: off):
	// the scheduler grows or shrinks the batch size, from batch_size and
	// within min_batch_size..max_batch_size, so batches take about this
	// long. The bounds default to batch_size/100 and batch_size×100.
	TargetBatchMS *int64 `json:"target_batch_ms,omitempty"`
	MinBatchSize  *int   `json:"min_batch_size,omitempty"`
	MaxBatchSize  *int   `json:"max_batch_size,omitempty"`
	// DryRun tries the run's first batches in transactions that are rolled
	// back and answers 200 with a DryRun report; no run is created.
	DryRun bool `json:"dry_run,omitempty"`
	// DryRunBatches is how many batches a dry run tries (1..20, default 3).
	DryRunBatches *int `json:"dry_run_batches,omitempty"`
}

// Retried is the answer of a retry.
type Retried struct {
	Retried int64 `json:"retried"`
	Run     Run   `json:"run"`
}

// Connector is a connector kind as GET /api/v1/connectors lists it: its
// source and sink sides (either may be absent) with their settings.
type Connector struct {
	Kind        string         `json:"kind"`
	Description string         `json:"description,omitempty"`
	Delivery    string         `json:"delivery,omitempty"`
	Source      *ConnectorSide `json:"source,omitempty"`
	Sink        *ConnectorSide `json:"sink,omitempty"`
}

// ConnectorSide lists the settings of a connector's source or sink.
type ConnectorSide struct {
	Settings []ConnectorSetting `json:"settings"`
}

// ConnectorSetting is one setting of a connector configuration.
type ConnectorSetting struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Help     string `json:"help,omitempty"`
}
