package store

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by every Store implementation. Match them with
// errors.Is; implementations wrap them with what was being done.
var (
	// ErrNotFound means the run, batch, definition or flow does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict means the operation lost a race or contradicts the current
	// state: the batch is claimed by a live attempt, the claim token is stale,
	// the planning cursor or watermark moved, or the state transition is
	// illegal. The HTTP API maps it to 409.
	ErrConflict = errors.New("conflict")

	// ErrIllegalTransition means a run or batch cannot move from its current
	// state to the requested one. Errors matching it are *TransitionError and
	// also match ErrConflict.
	ErrIllegalTransition = errors.New("illegal state transition")

	// ErrInvalidArgument means the caller passed something the store refuses
	// before touching any data: a malformed cursor, a negative limit, an empty
	// name. Errors matching it are usually *ArgumentError.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrFlowBusy means a flow already has a live run (scheduled, running,
	// paused or cancelling), so another cannot start and the flow cannot be
	// deleted. Errors matching it are *FlowBusyError and also match
	// ErrConflict.
	ErrFlowBusy = errors.New("flow has a live run")

	// ErrSchemaTooNew means the database was migrated by a newer dripflow than
	// this binary; the binary refuses to use it rather than corrupt it.
	ErrSchemaTooNew = errors.New("store schema is newer than this binary")

	// ErrSchemaOutdated means the database has not been migrated to the schema
	// this binary needs; run `dripflow migrate`.
	ErrSchemaOutdated = errors.New("store schema is out of date")
)

// TransitionError reports an illegal state transition of a run or a batch.
// It matches ErrIllegalTransition and ErrConflict.
type TransitionError struct {
	Entity string // "run" or "batch"
	ID     string // run id, or "run/seq" for a batch
	From   string
	To     string
	// Hint, when set, tells the user what to do instead.
	Hint string
}

func (e *TransitionError) Error() string {
	msg := fmt.Sprintf("%s %s: cannot go from %s to %s", e.Entity, e.ID, e.From, e.To)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Is makes a *TransitionError match ErrIllegalTransition and ErrConflict.
func (e *TransitionError) Is(target error) bool {
	return target == ErrIllegalTransition || target == ErrConflict
}

// ArgumentError reports a bad argument and the field that carries it. It
// matches ErrInvalidArgument.
type ArgumentError struct {
	Field   string
	Message string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Message)
}

// Is makes an *ArgumentError match ErrInvalidArgument.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

func argErr(field, format string, args ...any) error {
	return &ArgumentError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// FlowBusyError reports that a flow already has a live run. It matches
// ErrFlowBusy and ErrConflict.
type FlowBusyError struct {
	Flow  string
	RunID int64 // the live run
	State RunState
}

func (e *FlowBusyError) Error() string {
	return fmt.Sprintf("flow %q has run %d %s: one run of a flow at a time", e.Flow, e.RunID, e.State)
}

// Is makes a *FlowBusyError match ErrFlowBusy and ErrConflict.
func (e *FlowBusyError) Is(target error) bool { return target == ErrFlowBusy || target == ErrConflict }
