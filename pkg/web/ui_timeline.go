package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// timelineShown is how many of a run's newest events its page shows unless
// asked for all (?timeline=all).
const timelineShown = 50

// timelineItem is one event as the run page shows it.
type timelineItem struct {
	ID      int64
	At      time.Time
	Kind    string
	Actor   string
	Batch   int64
	Message string
	// BatchURL is the run page's batch table from that batch on.
	BatchURL string
	// Class colours the kind's badge like a state.
	Class string
}

// timelineView is the run page's Timeline card and the "failed before"
// hint near its header.
type timelineView struct {
	Items  []timelineItem // newest first
	Total  int
	Hidden int    // older events not shown
	AllURL string // the page with every event
	Err    string // the timeline could not be read
	// FailedAttempts counts the failed attempts on the timeline, of
	// FailedBatches batches, FinalBatches of which failed for good; shown
	// as a hint when no batch is failed now (they were retried).
	FailedAttempts, FailedBatches, FinalBatches int
	Retried                                     bool
	FailedBefore                                bool
}

// timelineClass is the state a kind's badge looks like.
var timelineClass = map[store.EventKind]string{
	store.EventCreated: "scheduled", store.EventStarted: "running", store.EventPaused: "paused",
	store.EventResumed: "running", store.EventCancelled: "cancelled", store.EventRescheduled: "scheduled",
	store.EventRetried: "enqueued", store.EventBatchFailed: "failed", store.EventThrottled: "paused",
	store.EventFinished: "succeeded", store.EventNote: "pending", store.EventHook: "pending",
}

// runTimelineView reads the run's timeline (every event, at most
// store.MaxRunEvents) for its page.
func (s *Server) runTimelineView(ctx context.Context, run store.Run, all bool) timelineView {
	var (
		v     timelineView
		evs   []store.RunEvent
		after int64
	)
	for range store.MaxRunEvents/store.MaxEventLimit + 1 {
		page, err := s.opts.Store.ListRunEvents(ctx, run.ID, store.EventFilter{AfterID: after, Limit: store.MaxEventLimit})
		if err != nil {
			v.Err = "The timeline could not be read: " + publicMessage(err)
			break
		}
		evs = append(evs, page...)
		if len(page) < store.MaxEventLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	failed, final := map[int64]bool{}, map[int64]bool{}
	for _, e := range evs {
		switch e.Kind {
		case store.EventBatchFailed:
			v.FailedAttempts++
			failed[e.Batch] = true
			if strings.HasPrefix(e.Key, "failed:") {
				final[e.Batch] = true
			}
		case store.EventRetried:
			v.Retried = true
		}
	}
	v.FailedBatches, v.FinalBatches = len(failed), len(final)
	v.FailedBefore = run.BatchesFailed == 0 && v.FailedAttempts > 0
	v.Total = len(evs)
	shown := evs
	if !all && len(shown) > timelineShown {
		shown = shown[len(shown)-timelineShown:]
		v.Hidden = len(evs) - timelineShown
		v.AllURL = fmt.Sprintf("%s/runs/%d?timeline=all#timeline", s.base, run.ID)
	}
	for i := len(shown) - 1; i >= 0; i-- {
		e := shown[i]
		class := timelineClass[e.Kind]
		if e.Kind == store.EventFinished {
			for _, st := range []store.RunState{store.RunFailed, store.RunCancelled} {
				if strings.HasPrefix(e.Message, string(st)) {
					class = string(st)
				}
			}
		}
		it := timelineItem{ID: e.ID, At: e.At, Kind: string(e.Kind), Actor: e.Actor, Batch: e.Batch,
			Message: e.Message, Class: "state state-" + class}
		if e.Batch > 0 {
			it.BatchURL = fmt.Sprintf("%s/runs/%d?bcursor=%s#batches", s.base, run.ID, store.EncodeCursor(e.Batch-1))
		}
		v.Items = append(v.Items, it)
	}
	return v
}
