package store

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the batch attempt protocol. All of them match ErrConflict.
var (
	// ErrBatchFinished: the batch is succeeded or cancelled; a task delivered
	// for it must be acknowledged without processing.
	ErrBatchFinished = fmt.Errorf("batch already finished: %w", ErrConflict)
	// ErrBatchClaimed: another attempt holds a live claim on the batch.
	ErrBatchClaimed = fmt.Errorf("batch claimed by a live attempt: %w", ErrConflict)
	// ErrStaleClaim: the claim token is not the batch's current one (its lease
	// expired and another attempt claimed the batch, or it never claimed it).
	ErrStaleClaim = fmt.Errorf("claim is not current: %w", ErrConflict)
	// ErrRunNotRunning: the batch's run is not running (paused, cancelling,
	// finished or not yet started), so no batch of it may start.
	ErrRunNotRunning = fmt.Errorf("run is not running: %w", ErrConflict)
)

// Batch is a half-open key range (Lo, Hi] of a run. The batch row is the
// run's checkpoint for that range.
type Batch struct {
	RunID int64      `json:"run_id"`
	Seq   int64      `json:"seq"`
	State BatchState `json:"state"`

	// Lo and Hi are the encoded key bounds; Lo == "" means unbounded below.
	Lo string `json:"lo"`
	Hi string `json:"hi"`
	// Size is the number of keys the batch was planned with (the run's
	// batch size then, which an adaptive run changes as it goes; the last
	// batch may hold fewer). 0 for a batch planned before it was recorded.
	Size int `json:"size"`

	// Attempts counts claims; Retries counts manual retries of the failed
	// batch (part of its task id).
	Attempts int `json:"attempts"`
	Retries  int `json:"retries"`

	// Worker and ClaimToken identify the attempt that last claimed the
	// batch; LeaseUntil is when that claim stops being live.
	Worker     string     `json:"worker,omitempty"`
	ClaimToken string     `json:"-"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`

	RowsRead    int64         `json:"rows_read"`
	RowsWritten int64         `json:"rows_written"`
	RowsSkipped int64         `json:"rows_skipped"`
	Duration    time.Duration `json:"duration"`

	Error      string `json:"error,omitempty"`
	ErrorStack string `json:"error_stack,omitempty"`

	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	EnqueuedAt *time.Time `json:"enqueued_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// ID returns "run/seq", the batch's name in messages.
func (b Batch) ID() string { return BatchID(b.RunID, b.Seq) }

// BatchID formats a batch's name in messages.
func BatchID(runID, seq int64) string { return fmt.Sprintf("%d/%d", runID, seq) }

// KeyRange is the range of one planned batch, and the batch size it was
// planned with (kept as Batch.Size; 0 for none).
type KeyRange struct {
	Lo   string
	Hi   string
	Size int
}

// PlanStep is one step of lazy planning: the batches planned from the run's
// current PlanCursor (From) up to To. AppendBatches applies it only if the
// run's cursor still equals From, so two planners can never plan a range
// twice.
type PlanStep struct {
	From    string
	To      string
	Done    bool // no batch follows To
	Batches []KeyRange
	// Enqueue creates the batches enqueued (EnqueuedAt set) rather than
	// pending, for a planner that puts their tasks on the queue right
	// after: one store operation per planning step instead of one more per
	// batch. A task lost in between is the reconciler's, as for any
	// enqueued batch whose task is missing.
	Enqueue bool
}

// Validate refuses a step whose batches' sizes are out of range.
func (s PlanStep) Validate() error {
	for _, kr := range s.Batches {
		if kr.Size < 0 || kr.Size > MaxBatchSize {
			return argErr("size", "must be between 0 and %d, got %d", MaxBatchSize, kr.Size)
		}
	}
	return nil
}

// Claim identifies one attempt at a batch.
type Claim struct {
	Worker string        // who is claiming, for display
	Token  string        // unique per attempt; required
	Lease  time.Duration // how long the claim stays live; required
}

// Validate reports a claim the store refuses.
func (c Claim) Validate() error {
	if c.Token == "" {
		return argErr("token", "must not be empty")
	}
	if c.Lease <= 0 {
		return argErr("lease", "must be positive, got %s", c.Lease)
	}
	return nil
}

// Result is what a succeeded attempt did.
type Result struct {
	RowsRead    int64
	RowsWritten int64
	RowsSkipped int64
	Duration    time.Duration
}

// Validate refuses negative counts.
func (r Result) Validate() error {
	if r.RowsRead < 0 || r.RowsWritten < 0 || r.RowsSkipped < 0 {
		return argErr("result", "row counts must not be negative")
	}
	if r.Duration < 0 {
		return argErr("duration", "must not be negative")
	}
	return nil
}

// Failure is why an attempt failed. A Final failure marks the batch failed;
// otherwise it goes back to enqueued for the queue's retry.
type Failure struct {
	Message  string
	Stack    string
	Final    bool
	Duration time.Duration
}

// IsFinished reports whether err says the batch needs no more processing.
func IsFinished(err error) bool { return errors.Is(err, ErrBatchFinished) }
