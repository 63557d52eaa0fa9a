package store

import (
	"time"
	"unicode/utf8"
)

// EventKind says what a run event records.
type EventKind string

// Event kinds of a run's timeline.
const (
	EventCreated     EventKind = "created"     // the run was created (message: params and options)
	EventStarted     EventKind = "started"     // the run started running
	EventPaused      EventKind = "paused"      // someone paused it
	EventResumed     EventKind = "resumed"     // someone resumed it
	EventCancelled   EventKind = "cancelled"   // someone cancelled it
	EventRescheduled EventKind = "rescheduled" // someone moved its start time
	EventRetried     EventKind = "retried"     // someone retried failed batches (all, or Batch)
	EventBatchFailed EventKind = "batch_failed"
	EventThrottled   EventKind = "throttled" // a scheduler decision held batches back
	EventFinished    EventKind = "finished"  // the run ended (message: how, with counts)
	EventNote        EventKind = "note"      // free text
	EventHook        EventKind = "hook"      // a notification was sent or failed
)

// Valid reports whether k is a known event kind.
func (k EventKind) Valid() bool {
	switch k {
	case EventCreated, EventStarted, EventPaused, EventResumed, EventCancelled, EventRescheduled,
		EventRetried, EventBatchFailed, EventThrottled, EventFinished, EventNote, EventHook:
		return true
	}
	return false
}

// Limits of a run event and of a run's timeline.
const (
	// MaxEventMessage bounds an event's message in bytes; a longer one is
	// cut (at a character boundary) and ends with "…".
	MaxEventMessage = 4096
	// MaxEventKey and MaxEventActor bound an event's key and actor in
	// bytes; longer ones are refused.
	MaxEventKey   = 200
	MaxEventActor = 200
	// MaxRunEvents is how many events a run keeps: appending beyond it
	// drops the run's oldest events (and frees their keys).
	MaxRunEvents = 10_000
	// DefaultEventLimit and MaxEventLimit are the page sizes of
	// ListRunEvents.
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// RunEvent is one entry of a run's timeline: who did what to the run, when
// a batch failed and why, what the scheduler decided.
type RunEvent struct {
	ID      int64     `json:"id"` // assigned on append, increasing within a run
	RunID   int64     `json:"run_id"`
	At      time.Time `json:"at"` // set by the store when zero
	Kind    EventKind `json:"kind"`
	Actor   string    `json:"actor,omitempty"` // "user:alice", "scheduler", "worker:<id>"
	Batch   int64     `json:"batch,omitempty"` // batch seq when the event is about one batch
	Message string    `json:"message,omitempty"`
	Key     string    `json:"key,omitempty"` // optional: at most one event per (run, key)
}

// EventFilter selects the events ListRunEvents returns.
type EventFilter struct {
	// AfterID returns only events with a larger id (0: from the first).
	AfterID int64
	// Limit is the most events returned: 0 means DefaultEventLimit, at
	// most MaxEventLimit.
	Limit int
}

// Normalize checks the filter and returns its limit with the default
// applied.
func (f EventFilter) Normalize() (int, error) {
	if f.AfterID < 0 {
		return 0, argErr("after", "must not be negative, got %d", f.AfterID)
	}
	switch {
	case f.Limit == 0:
		return DefaultEventLimit, nil
	case f.Limit < 0 || f.Limit > MaxEventLimit:
		return 0, argErr("limit", "must be between 1 and %d, got %d", MaxEventLimit, f.Limit)
	}
	return f.Limit, nil
}

// Normalize checks an event before it is appended and returns it as the
// store keeps it: At in UTC with microseconds (now when zero), the message
// cut to MaxEventMessage bytes. An unknown kind, a negative batch, or a key
// or actor that is too long is an *ArgumentError.
func (e RunEvent) Normalize(now time.Time) (RunEvent, error) {
	if !e.Kind.Valid() {
		return RunEvent{}, argErr("kind", "unknown event kind %q", e.Kind)
	}
	if e.Batch < 0 {
		return RunEvent{}, argErr("batch", "must not be negative, got %d", e.Batch)
	}
	if len(e.Key) > MaxEventKey {
		return RunEvent{}, argErr("key", "at most %d bytes, got %d", MaxEventKey, len(e.Key))
	}
	if len(e.Actor) > MaxEventActor {
		return RunEvent{}, argErr("actor", "at most %d bytes, got %d", MaxEventActor, len(e.Actor))
	}
	if !utf8.ValidString(e.Key) {
		return RunEvent{}, argErr("key", "must be UTF-8")
	}
	if !utf8.ValidString(e.Actor) {
		return RunEvent{}, argErr("actor", "must be UTF-8")
	}
	e.Message = truncateMessage(e.Message)
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.ID = 0
	return e, nil
}

// truncateMessage cuts msg to MaxEventMessage bytes at a character
// boundary, ending it with "…", and replaces invalid UTF-8.
func truncateMessage(msg string) string {
	if !utf8.ValidString(msg) {
		msg = string([]rune(msg)) // invalid bytes become U+FFFD
	}
	if len(msg) <= MaxEventMessage {
		return msg
	}
	const ellipsis = "…"
	cut := MaxEventMessage - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + ellipsis
}
