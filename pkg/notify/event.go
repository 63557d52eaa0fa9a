package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// Event is what happened to a run.
type Event string

// Run events.
const (
	// Started: the run started (the scheduler began planning its batches).
	Started Event = "started"
	// Succeeded: every batch of the run succeeded.
	Succeeded Event = "succeeded"
	// Failed: the run ended with failed batches, its error budget ran out,
	// or it could not be planned.
	Failed Event = "failed"
	// Cancelled: an operator cancelled the run and its batches in flight
	// finished.
	Cancelled Event = "cancelled"
)

// Events lists every event in lifecycle order.
var Events = []Event{Started, Succeeded, Failed, Cancelled}

// EndEvents are the events webhooks get unless they name others.
var EndEvents = []Event{Succeeded, Failed, Cancelled}

// Valid reports whether e is a known event.
func (e Event) Valid() bool {
	for _, k := range Events {
		if e == k {
			return true
		}
	}
	return false
}

// EventOf returns the end event of a run in state s, and false when s is
// not terminal.
func EventOf(s store.RunState) (Event, bool) {
	switch s {
	case store.RunSucceeded:
		return Succeeded, true
	case store.RunFailed:
		return Failed, true
	case store.RunCancelled:
		return Cancelled, true
	}
	return "", false
}

// ParseEvents reads a comma-separated list of events
// ("started,succeeded,failed,cancelled"); empty means EndEvents.
func ParseEvents(s string) ([]Event, error) {
	if strings.TrimSpace(s) == "" {
		return append([]Event(nil), EndEvents...), nil
	}
	var out []Event
	seen := map[Event]bool{}
	for _, part := range strings.Split(s, ",") {
		e := Event(strings.ToLower(strings.TrimSpace(part)))
		if !e.Valid() {
			return nil, fmt.Errorf("unknown event %q (known: %s)", strings.TrimSpace(part), eventList(Events))
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out, nil
}

func eventList(es []Event) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

// RunInfo is what a hook gets and a webhook's payload is made of: the run
// as it was when the event happened.
type RunInfo struct {
	Event Event
	Run   store.Run
	// FirstBatchError is the error of the run's first failed batch (by
	// sequence), "" when none failed; Run.Error is the run's summary.
	FirstBatchError string
	// Duration is how long the run ran, from StartedAt to FinishedAt (0 for
	// Started, or a run that never started).
	Duration time.Duration
	// Key is the same for every call of this event of this run — on every
	// scheduler, after a restart — so a hook with effects elsewhere can
	// make them idempotent with it: "run-42-succeeded-1764666000123456".
	// A failed run that is retried and ends again gets a new key.
	Key string
}

// HookFunc is a definition hook. Its error (or panic) is logged and recorded
// on the run's timeline; it never changes the run's outcome.
type HookFunc func(ctx context.Context, info RunInfo) error

// Hooks are what a definition asks to happen when its runs start and end.
// Zero Hooks ask for nothing.
type Hooks struct {
	// OnStart runs when a run starts; OnComplete when it succeeds; OnError
	// when it fails (failed batches, error budget exhausted, cannot be
	// planned). A cancelled run runs neither OnComplete nor OnError:
	// cancelling is an operator's decision, not an error; webhooks can
	// still hear of it (event cancelled).
	OnStart, OnComplete, OnError HookFunc
	// Webhooks are sent besides the global ones (DRIPFLOW_WEBHOOK_URLS).
	Webhooks []Webhook
}

// Func returns the hook for event e, or nil.
func (h Hooks) Func(e Event) HookFunc {
	switch e {
	case Started:
		return h.OnStart
	case Succeeded:
		return h.OnComplete
	case Failed:
		return h.OnError
	}
	return nil
}

// Validate checks every webhook; the error names the failing one
// ("webhooks[1].url: …").
func (h Hooks) Validate() error {
	for i, w := range h.Webhooks {
		if err := w.Validate(); err != nil {
			return prefix(fmt.Sprintf("webhooks[%d]", i), err)
		}
	}
	return nil
}

// Declared describes what h declares, for a definition's page: the hooks
// set ("on_complete") and the webhooks, redacted ("webhook https://hooks.slack.com/… (slack: failed)").
func (h Hooks) Declared() []string {
	var out []string
	for _, f := range []struct {
		name string
		fn   HookFunc
	}{{"on_start", h.OnStart}, {"on_complete", h.OnComplete}, {"on_error", h.OnError}} {
		if f.fn != nil {
			out = append(out, f.name)
		}
	}
	for _, w := range h.Webhooks {
		events := w.Events
		if events == nil {
			events = EndEvents
		}
		format, _ := ParseFormat(string(w.Format))
		out = append(out, fmt.Sprintf("webhook %s (%s: %s)", Redact(w.URL), format, eventList(events)))
	}
	return out
}

// Declarer is implemented by engine jobs whose definition declares hooks or
// webhooks (backfills.Definition, flows.Flow, flow specs' webhooks field).
type Declarer interface {
	Hooks() Hooks
}

// Key returns RunInfo.Key for event e of run r.
func Key(r store.Run, e Event) string {
	if e == Started {
		return fmt.Sprintf("run-%d-%s", r.ID, e)
	}
	var at int64
	if r.FinishedAt != nil {
		at = r.FinishedAt.UnixMicro()
	}
	return fmt.Sprintf("run-%d-%s-%d", r.ID, e, at)
}

// NewRunInfo returns the RunInfo of event e of r.
func NewRunInfo(r store.Run, e Event, firstBatchError string) RunInfo {
	info := RunInfo{Event: e, Run: r, FirstBatchError: firstBatchError, Key: Key(r, e)}
	if e != Started && r.StartedAt != nil && r.FinishedAt != nil {
		info.Duration = r.FinishedAt.Sub(*r.StartedAt)
	}
	return info
}
