package scheduler

import (
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// pacing is the least time between two batch starts of the run (0: none):
// its sleep, or one batch per batch_size / rows_per_second, whichever is
// longer.
func pacing(r store.Run) time.Duration {
	gap := r.Options.Sleep
	if r.Options.RowsPerSecond > 0 {
		gap = max(gap, time.Duration(float64(r.Options.BatchSize)/float64(r.Options.RowsPerSecond)*float64(time.Second)))
	}
	return gap
}

// paceTolerance is how late a paced batch start may be made up: a gap, at
// least 250 ms, at most 1 s, so over any 10 s the rows started stay within
// a few per cent of rows_per_second.
func paceTolerance(gap time.Duration) time.Duration {
	return min(max(gap, 250*time.Millisecond), time.Second)
}

// pace decides whether a batch of a run paced at gap may start at now. When
// it may, it books the start and returns when the next one is due; when
// not, it returns false and when this one may start.
//
// The next start is due a gap after this one was due, not after the
// scheduler got to it: a pass that comes late does not slow the run down.
// Lateness is made up within paceTolerance (a burst of at most that many
// rows' worth); a run that was held back longer (paused, at max_in_flight)
// starts afresh from now.
func (st *runState) pace(gap time.Duration, now time.Time) (ok bool, at time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if now.Before(st.nextAt) {
		return false, st.nextAt
	}
	due := st.nextAt
	if due.IsZero() || due.Before(now.Add(-paceTolerance(gap))) {
		due = now
	}
	st.nextAt = due.Add(gap)
	return true, st.nextAt
}
