package api

import "time"

// Event kinds of a run's timeline (RunEvent.Kind).
const (
	EventCreated     = "created"
	EventStarted     = "started"
	EventPaused      = "paused"
	EventResumed     = "resumed"
	EventCancelled   = "cancelled"
	EventRescheduled = "rescheduled"
	EventRetried     = "retried"
	EventBatchFailed = "batch_failed"
	EventThrottled   = "throttled"
	EventFinished    = "finished"
	EventNote        = "note"
	EventHook        = "hook"
)

// RunEvent is one entry of a run's timeline: who did what, a batch's failed
// attempt and why, a decision of the scheduler.
type RunEvent struct {
	// ID increases within the run: poll with ?after= the last one seen.
	ID    string    `json:"id"`
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	// Actor is who caused it: "user:alice", "scheduler", "worker:<id>",
	// "asynqmon".
	Actor string `json:"actor,omitempty"`
	// Batch is the batch's id when the event is about one batch.
	Batch   string `json:"batch,omitempty"`
	Message string `json:"message,omitempty"`
	// Key, when set, makes the event one of its kind per run (a throttle
	// reason, a missed tick).
	Key string `json:"key,omitempty"`
}

// Timeline is the body of GET /api/v1/runs/{id}/timeline: events oldest
// first after the asked id; NextAfter is the id to ask after next (the last
// event's, or the asked one when there is none).
type Timeline struct {
	Items     []RunEvent `json:"items"`
	NextAfter string     `json:"next_after"`
}
