package scheduler

import (
	"sync"
	"time"
)

// wakeup is the earliest instant something asked for a pass at: a paced
// batch's turn, a run's start_at, a flow's next tick. The plan loop sets
// its timer from it after each look.
type wakeup struct {
	mu sync.Mutex
	at time.Time
}

// noLaterThan asks for a pass at t.
func (w *wakeup) noLaterThan(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() || t.Before(w.at) {
		w.at = t
	}
}

// next returns how long until the pass asked for (at least 1 ms; 0 when
// none was asked for) and clears the request.
func (w *wakeup) next() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.IsZero() {
		return 0
	}
	d := time.Until(w.at)
	w.at = time.Time{}
	return max(d, time.Millisecond)
}
