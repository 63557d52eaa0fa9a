package store

import "fmt"

// RunState is the state of a run.
//
//	scheduled ─▶ running ⇄ paused
//	               │  ▲       │
//	               │  └─ failed (retry failed batches)
//	               ▼          ▼
//	   succeeded | failed | cancelling ─▶ cancelled
//
// A scheduled, running or paused run may also be cancelled directly when no
// batch is in flight.
type RunState string

// Run states.
const (
	RunScheduled  RunState = "scheduled"
	RunRunning    RunState = "running"
	RunPaused     RunState = "paused"
	RunCancelling RunState = "cancelling"
	RunSucceeded  RunState = "succeeded"
	RunFailed     RunState = "failed"
	RunCancelled  RunState = "cancelled"
)

// RunStates lists every run state in lifecycle order.
var RunStates = []RunState{RunScheduled, RunRunning, RunPaused, RunCancelling, RunSucceeded, RunFailed, RunCancelled}

var runTransitions = map[RunState][]RunState{
	RunScheduled:  {RunRunning, RunCancelled},
	RunRunning:    {RunPaused, RunCancelling, RunCancelled, RunSucceeded, RunFailed},
	RunPaused:     {RunRunning, RunCancelling, RunCancelled},
	RunCancelling: {RunCancelled},
	// A failed run goes back to running when its failed batches are retried.
	RunFailed:    {RunRunning},
	RunSucceeded: nil,
	RunCancelled: nil,
}

// Valid reports whether s is a known run state.
func (s RunState) Valid() bool { _, ok := runTransitions[s]; return ok }

// Terminal reports whether no batch of a run in state s will be processed
// again without an explicit retry.
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// CanTransition reports whether a run may move from s to to.
func (s RunState) CanTransition(to RunState) bool {
	for _, t := range runTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// ParseRunState parses a run state name.
func ParseRunState(s string) (RunState, error) {
	if st := RunState(s); st.Valid() {
		return st, nil
	}
	return "", &ArgumentError{Field: "status", Message: fmt.Sprintf("unknown run state %q", s)}
}

// BatchState is the state of a batch.
//
//	pending ─▶ enqueued ─▶ running ─▶ succeeded
//	   │          │          │  ▲
//	   │          │          │  └─ (lease expired: claimed again)
//	   │          │          ├─▶ enqueued (attempt failed, will be retried)
//	   │          │          ├─▶ failed ─▶ pending (retry) | running (replayed task)
//	   │          │          └─▶ cancelled (run cancelling, lease expired)
//	   └──────────┴─▶ cancelled
type BatchState string

// Batch states.
const (
	BatchPending   BatchState = "pending"
	BatchEnqueued  BatchState = "enqueued"
	BatchRunning   BatchState = "running"
	BatchSucceeded BatchState = "succeeded"
	BatchFailed    BatchState = "failed"
	BatchCancelled BatchState = "cancelled"
)

// BatchStates lists every batch state in lifecycle order.
var BatchStates = []BatchState{BatchPending, BatchEnqueued, BatchRunning, BatchSucceeded, BatchFailed, BatchCancelled}

var batchTransitions = map[BatchState][]BatchState{
	BatchPending:  {BatchEnqueued, BatchRunning, BatchCancelled},
	BatchEnqueued: {BatchRunning, BatchCancelled},
	// running → running is a new attempt claiming a batch whose previous
	// attempt's lease expired (its worker died).
	// running → cancelled: the run is cancelling and the attempt's worker
	// died (its lease expired); see Store.CancelExpiredBatches.
	BatchRunning: {BatchRunning, BatchSucceeded, BatchEnqueued, BatchFailed, BatchCancelled},
	// failed → running: a task replayed from the queue's archive claims it.
	BatchFailed:    {BatchPending, BatchRunning},
	BatchSucceeded: nil,
	BatchCancelled: nil,
}

// Valid reports whether s is a known batch state.
func (s BatchState) Valid() bool { _, ok := batchTransitions[s]; return ok }

// Terminal reports whether a batch in state s is finished.
func (s BatchState) Terminal() bool {
	return s == BatchSucceeded || s == BatchFailed || s == BatchCancelled
}

// CanTransition reports whether a batch may move from s to to.
func (s BatchState) CanTransition(to BatchState) bool {
	for _, t := range batchTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// ParseBatchState parses a batch state name.
func ParseBatchState(s string) (BatchState, error) {
	if st := BatchState(s); st.Valid() {
		return st, nil
	}
	return "", &ArgumentError{Field: "status", Message: fmt.Sprintf("unknown batch state %q", s)}
}
