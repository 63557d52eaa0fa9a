package store

import (
	"context"
	"time"
)

// Store is where runs, batches, definitions and flow state live. Every method
// is safe for concurrent use by many processes. Arguments are validated before
// anything is written: bad input returns an error matching ErrInvalidArgument
// and changes nothing.
//
// Times are stored with microsecond precision in UTC.
type Store interface {
	// CreateRun stores a new run in state scheduled with zeroed counters and
	// Total -1, and returns it with its id. A run of kind flow is refused
	// with a *FlowBusyError (matching ErrFlowBusy and ErrConflict) while
	// another run of kind flow of the same definition is scheduled,
	// running, paused or cancelling: the check and the insert are one
	// atomic step, so two concurrent creations cannot both succeed. Runs of
	// kind backfill are never refused, nor counted.
	CreateRun(ctx context.Context, n NewRun) (Run, error)

	// GetRun returns a run with its counters, or ErrNotFound.
	GetRun(ctx context.Context, id int64) (Run, error)

	// ListRuns returns runs newest first (by id, descending), filtered, with
	// keyset pagination.
	ListRuns(ctx context.Context, f RunFilter) (Page[Run], error)

	// TransitionRun moves a run to state to if RunState.CanTransition allows
	// it from its current state, else returns a *TransitionError and changes
	// nothing. Moving to running sets StartedAt the first time; moving to a
	// terminal state sets FinishedAt; moving out of one clears it. opts.Error
	// is kept as the run's Error when moving to failed; moving to running
	// clears Error. When opts.From is set the run must be in that state, else
	// it is a *TransitionError from the state it is in (so a resume cannot
	// start a scheduled run). Moving a failed run of kind flow back to
	// running while another run of that flow is live is a *FlowBusyError,
	// checked atomically as in CreateRun.
	TransitionRun(ctx context.Context, id int64, to RunState, opts *TransitionOptions) (Run, error)

	// RescheduleRun sets the StartAt of a scheduled run to at (UTC,
	// microseconds). A run in any other state is a *TransitionError from
	// that state to scheduled; ErrNotFound for an unknown run.
	RescheduleRun(ctx context.Context, id int64, at time.Time) (Run, error)

	// SetRunTotal records the number of records in the run's scope (-1:
	// unknown); estimated says it is an estimate. A total below -1 is an
	// *ArgumentError for field "total".
	SetRunTotal(ctx context.Context, id int64, total int64, estimated bool) error

	// SetRunHold records why the scheduler holds the run's planning back
	// (a failing health check), or clears it (nil), whatever the run's
	// state; the hold is stored normalized (RunHold.Normalize) and
	// updated_at moves. ErrNotFound for an unknown run.
	SetRunHold(ctx context.Context, id int64, h *RunHold) error

	// CancelRun atomically cancels the run's pending and enqueued batches
	// and moves the run to cancelling when batches are still running,
	// otherwise to cancelled. It is a *TransitionError for a run that is
	// already succeeded, failed or cancelled, or is cancelling.
	CancelRun(ctx context.Context, id int64) (Run, error)

	// AppendBatches applies one planning step: if the run is running or
	// paused, its PlanDone is false and its PlanCursor equals step.From, it
	// creates step.Batches as pending batches (enqueued ones when
	// step.Enqueue) numbered after the run's existing ones (Seq 1, 2, …),
	// each with its KeyRange's Size as Batch.Size, sets PlanCursor to
	// step.To and PlanDone to step.Done, and adds them to the counters.
	// Otherwise it returns an error matching ErrConflict and creates
	// nothing. A Size out of 0..MaxBatchSize is an *ArgumentError for
	// "size". It returns the new batches.
	AppendBatches(ctx context.Context, runID int64, step PlanStep) ([]Batch, error)

	// GetBatch returns one batch, or ErrNotFound.
	GetBatch(ctx context.Context, runID, seq int64) (Batch, error)

	// ListBatches returns a run's batches in Seq order, filtered, with keyset
	// pagination. ErrNotFound if the run does not exist.
	ListBatches(ctx context.Context, runID int64, f BatchFilter) (Page[Batch], error)

	// EnqueueBatch moves a pending batch to enqueued and sets EnqueuedAt. It
	// is a *TransitionError from any other state.
	EnqueueBatch(ctx context.Context, runID, seq int64) (Batch, error)

	// ClaimBatch starts an attempt: atomically, if the run is running and the
	// batch is pending, enqueued, failed, or running under a claim whose
	// lease has expired, the batch becomes running under c (Attempts+1,
	// Worker, ClaimToken, LeaseUntil = now+c.Lease, StartedAt = now, Error
	// kept) and the counters move with it. Otherwise nothing changes and the
	// error matches, checked in this order, ErrNotFound, ErrBatchFinished
	// (succeeded or cancelled, whatever the run's state), ErrRunNotRunning,
	// or ErrBatchClaimed (live claim).
	ClaimBatch(ctx context.Context, runID, seq int64, c Claim) (Batch, error)

	// ExpireClaims ends, now, the leases of the claims worker holds on
	// running batches of run runID, as if the worker had stopped extending
	// them a lease ago: a running run's batch can be claimed again at once,
	// a cancelling run's is cancelled by CancelExpiredBatches. Claim tokens
	// are kept, so the attempt may still complete while no other attempt
	// has claimed the batch (as after any expired lease). It returns the
	// batches whose lease it ended (none is not an error). ErrNotFound for
	// an unknown run; an empty worker is an *ArgumentError for "worker".
	ExpireClaims(ctx context.Context, runID int64, worker string) ([]Batch, error)

	// CancelExpiredBatches settles a cancelling run whose in-flight batches
	// will not finish (their worker died): atomically, each running batch
	// whose claim lease has expired becomes cancelled (FinishedAt set,
	// ClaimToken and LeaseUntil cleared, so a late CompleteBatch or
	// FailBatch of that attempt is refused), the counters move, and the run
	// becomes cancelled once no batch of it is running. A run in any other
	// state is returned unchanged. ErrNotFound for an unknown run.
	CancelExpiredBatches(ctx context.Context, runID int64) (Run, error)

	// ExtendClaim pushes the lease of a running batch claimed with token to
	// now+lease. ErrStaleClaim if the claim is not current.
	ExtendClaim(ctx context.Context, runID, seq int64, token string, lease time.Duration) (Batch, error)

	// CompleteBatch ends the attempt holding token successfully: atomically,
	// if the batch is running under that token, it becomes succeeded with
	// r's counts, duration and FinishedAt (Error and ErrorStack cleared,
	// ClaimToken and LeaseUntil cleared, Worker kept), the run's counters
	// move and r's row counts are added to the run. Otherwise nothing changes and the error
	// matches ErrBatchFinished (already succeeded or cancelled) or
	// ErrStaleClaim. A completion is accepted after its lease expired as long
	// as no other attempt claimed the batch.
	CompleteBatch(ctx context.Context, runID, seq int64, token string, r Result) (Batch, error)

	// FailBatch ends the attempt holding token with an error: the batch
	// becomes failed (f.Final, with FinishedAt) or enqueued for another
	// attempt, keeping f.Message and f.Stack as Error and ErrorStack and
	// f.Duration as Duration, and releasing the claim (ClaimToken and
	// LeaseUntil cleared, Worker kept). Errors as CompleteBatch.
	FailBatch(ctx context.Context, runID, seq int64, token string, f Failure) (Batch, error)

	// RetryBatches moves failed batches of the run back to pending
	// (Retries+1, FinishedAt cleared) — all of them when seq is nil, else
	// just that one — and moves a failed run back to running, all in one
	// atomic step. It returns how many batches it moved. A succeeded or
	// cancelled run, or a cancelling one, is a *TransitionError; retrying
	// one batch that is not failed is a *TransitionError for that batch.
	// Retrying a failed run of kind flow while another run of that flow is
	// live is a *FlowBusyError, checked atomically as in CreateRun.
	RetryBatches(ctx context.Context, runID int64, seq *int64) (int64, error)

	// UpsertDefinition creates or replaces a definition's metadata. For a
	// definition of kind flow it also creates the flow's state (inactive,
	// no watermark) if missing, and keeps it otherwise. It stores code
	// definitions only (Origin "" or OriginCode): replacing a definition
	// whose Origin is OriginSpec is an error matching ErrConflict, and so
	// is a d with Origin OriginSpec (use SaveFlowSpec).
	UpsertDefinition(ctx context.Context, d Definition) (Definition, error)

	// SaveFlowSpec stores a new version of a flow defined as data, and its
	// definition (Origin OriginSpec, Version the new version, Config the
	// spec), in one atomic step. With p.Create the flow must not exist (a
	// definition of that name is ErrConflict); otherwise it must exist as a
	// spec flow (ErrNotFound if no definition, ErrConflict if a code one)
	// and, when p.IfVersion > 0, be at that version (ErrConflict if it
	// moved). Versions count 1, 2, … per name and are never reused, also
	// after DeleteFlowSpec. The flow's state is created inactive if missing
	// and kept otherwise.
	SaveFlowSpec(ctx context.Context, p SaveFlowSpec) (FlowSpec, error)

	// GetFlowSpec returns version of a spec flow (0: its latest), also of
	// a deleted flow. ErrNotFound when there is no such version; a negative
	// version is an *ArgumentError for "version".
	GetFlowSpec(ctx context.Context, name string, version int64) (FlowSpec, error)

	// ListFlowSpecs returns every stored version of a spec flow, newest
	// first; none is not an error.
	ListFlowSpecs(ctx context.Context, name string) ([]FlowSpec, error)

	// DeleteFlowSpec removes a spec flow's definition and state (its
	// versions and runs are kept as history). It is a *FlowBusyError while
	// a run of the flow is live, ErrNotFound for an unknown flow and
	// ErrConflict for a code definition; atomic as CreateRun.
	DeleteFlowSpec(ctx context.Context, name string) error

	// RecordMissedTick notes that a flow's runtime came due at at while a
	// run of it was still live, so the tick was not run: MissedTicks+1 and
	// LastMissedTick = at. ErrNotFound for an unknown flow.
	RecordMissedTick(ctx context.Context, name string, at time.Time) (FlowState, error)

	// GetDefinition returns one definition, or ErrNotFound.
	GetDefinition(ctx context.Context, name string) (Definition, error)

	// ListDefinitions returns every definition ordered by name.
	ListDefinitions(ctx context.Context) ([]Definition, error)

	// GetFlow returns a flow's state, or ErrNotFound.
	GetFlow(ctx context.Context, name string) (FlowState, error)

	// ListFlows returns every flow's state ordered by name.
	ListFlows(ctx context.Context) ([]FlowState, error)

	// SetFlowActive activates or deactivates a flow. ErrNotFound for an
	// unknown flow.
	SetFlowActive(ctx context.Context, name string, active bool) (FlowState, error)

	// AdvanceWatermark sets a flow's watermark to to if it is still from,
	// else returns an error matching ErrConflict and changes nothing.
	AdvanceWatermark(ctx context.Context, name, from, to string) (FlowState, error)

	// AppendRunEvent appends e to its run's timeline (see RunEvent.Normalize
	// for what is checked and how At and Message are stored) with the next
	// id of the run, and returns it. When e.Key is set and the run already
	// has an event with that key, nothing is written and the existing event
	// is returned with inserted=false; the check and the append are one
	// atomic step. ErrNotFound when the run does not exist. A run keeps its
	// newest MaxRunEvents events: appending beyond drops the oldest.
	AppendRunEvent(ctx context.Context, e RunEvent) (ev RunEvent, inserted bool, err error)

	// ListRunEvents returns the run's events with ID > f.AfterID, oldest
	// first, at most f.Limit (see EventFilter). ErrNotFound when the run
	// does not exist.
	ListRunEvents(ctx context.Context, runID int64, f EventFilter) ([]RunEvent, error)

	// Ping reports whether the store's backend is reachable.
	Ping(ctx context.Context) error

	// Close releases the store's connections.
	Close() error
}
