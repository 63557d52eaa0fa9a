package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// eventOf converts a store event.
func eventOf(e store.RunEvent) api.RunEvent {
	out := api.RunEvent{ID: strconv.FormatInt(e.ID, 10), RunID: strconv.FormatInt(e.RunID, 10), At: e.At, Kind: string(e.Kind),
		Actor: e.Actor, Message: e.Message, Key: e.Key}
	if e.Batch > 0 {
		out.Batch = strconv.FormatInt(e.Batch, 10)
	}
	return out
}

// runTimeline answers GET /api/v1/runs/{id}/timeline?after=ID&limit=N: the
// run's events after ID (0: from the first), oldest first, at most N
// (default 100, at most 1000).
func (s *Server) runTimeline(w http.ResponseWriter, r *http.Request, _ string) {
	id, err := pathID(r, "id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	var f store.EventFilter
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "after", "after must be an event id (an integer, 0 or more)"))
			return
		}
		f.AfterID = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, errorf(codeInvalid, "limit", "limit must be an integer"))
			return
		}
		f.Limit = n
	}
	evs, err := s.opts.Store.ListRunEvents(r.Context(), id, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := api.Timeline{Items: make([]api.RunEvent, 0, len(evs)), NextAfter: strconv.FormatInt(f.AfterID, 10)}
	for _, e := range evs {
		out.Items = append(out.Items, eventOf(e))
	}
	if len(evs) > 0 {
		out.NextAfter = strconv.FormatInt(evs[len(evs)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// Where an action came from, in its timeline message.
const (
	viaAPI = "API"
	viaUI  = "UI"
)

// viaOf names the channel of an API request: the CLI when its client says
// so (User-Agent dripflow-cli/…), else the API.
func viaOf(r *http.Request) string {
	if ua := r.Header.Get("User-Agent"); len(ua) >= len("dripflow-cli") && ua[:len("dripflow-cli")] == "dripflow-cli" {
		return "CLI"
	}
	return viaAPI
}

// actionEvents maps the control actions of s.control to their event kinds.
var actionEvents = map[string]store.EventKind{
	"paused":      store.EventPaused,
	"resumed":     store.EventResumed,
	"cancelled":   store.EventCancelled,
	"started now": store.EventStarted,
	"rescheduled": store.EventRescheduled,
}

// noteAction writes a control action that succeeded (action as s.control
// and the UI name it) to the run's timeline, by who, through via.
func (s *Server) noteAction(ctx context.Context, who, via, action string, run store.Run) {
	kind, ok := actionEvents[action]
	if !ok {
		return
	}
	e := store.RunEvent{RunID: run.ID, Kind: kind, Actor: timeline.User(who)}
	switch kind {
	case store.EventStarted:
		e.Message, e.Key = fmt.Sprintf("started now by %s (%s), before its start time", who, via), "started"
	case store.EventRescheduled:
		at := "—"
		if run.StartAt != nil {
			at = run.StartAt.UTC().Format(time.RFC3339)
		}
		e.Message = fmt.Sprintf("rescheduled by %s (%s) to start at %s", who, via, at)
	case store.EventCancelled:
		e.Message = fmt.Sprintf("cancelled by %s (%s)", who, via)
		if run.State == store.RunCancelling {
			e.Message += fmt.Sprintf("; %s in flight finish first", countNoun(run.BatchesRunning, "batch", "batches"))
		}
	default:
		e.Message = fmt.Sprintf("%s by %s (%s)", action, who, via)
	}
	timeline.Record(ctx, s.opts.Store, s.log, e)
}

// noteRetry writes a retry that moved n failed batches (seq: the one
// batch asked for) to the run's timeline.
func (s *Server) noteRetry(ctx context.Context, who, via string, runID int64, seq *int64, n int64) {
	e := store.RunEvent{RunID: runID, Kind: store.EventRetried, Actor: timeline.User(who)}
	if seq != nil {
		e.Batch = *seq
		e.Message = fmt.Sprintf("batch %d retried by %s (%s)", *seq, who, via)
	} else {
		e.Message = fmt.Sprintf("%s retried by %s (%s)", countNoun(n, "failed batch", "failed batches"), who, via)
	}
	timeline.Record(ctx, s.opts.Store, s.log, e)
}

// createdEvent gives control.NewRun.Created: the run's creation by who
// through via, with its params and options.
func (s *Server) createdEvent(who, via string) func(store.Run) store.RunEvent {
	return func(run store.Run) store.RunEvent {
		return store.RunEvent{RunID: run.ID, Kind: store.EventCreated, Actor: timeline.User(who),
			Message: fmt.Sprintf("created by %s (%s): %s", who, via, timeline.Created(run)), Key: "created"}
	}
}

// noteUI is noteAction for a UI action that ended with err (nothing is
// written when it failed).
func (s *Server) noteUI(ctx context.Context, err error, q *uiReq, action string, id int64) {
	if err != nil {
		return
	}
	run, gerr := s.opts.Store.GetRun(ctx, id)
	if gerr != nil {
		return
	}
	s.noteAction(ctx, q.identity, viaUI, action, run)
}

func countNoun(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatCount(n) + " " + many
}
