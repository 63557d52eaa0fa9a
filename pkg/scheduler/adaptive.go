package scheduler

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// The adaptive batch size of a run with a target_batch_time: the planner
// asks batchSize for the size of the batches it is about to plan. The
// answer comes from the controller (batchsize.go) fed with the run's
// batches that succeeded since the last look; it is exported as
// dripflow_run_batch_size, recorded on every batch as it is planned
// (Batch.Size), and a change by 2× or more since the last one noted goes on
// the run's timeline.

// sampleRecheck is how many seqs below the newest succeeded batch read
// are read again (at most): batches finish out of order, and one that
// finished after a higher one was read still counts.
const sampleRecheck = 32

// adaptState is what the planner keeps about an adaptive run's batch size.
// It is a cache: a new leader (or a restarted scheduler) goes on from the
// size the run's last batch was planned with and reads its newest
// succeeded batches again.
type adaptState struct {
	size   int            // batches are planned with this size now; 0: not read yet
	seen   int64          // the run's BatchesSucceeded at the last look
	after  int64          // succeeded batches above this seq are read
	read   map[int64]bool // seqs above after already read
	window []batchSample  // newest samples, oldest first (at most sizeWindow)
	noted  int            // the size last put on the timeline
}

// batchSize returns the size to plan run r's next batches with: its batch
// size, or an adaptive run's current size after a look at the batches that
// succeeded since the last one. st.adapt is only touched here, from the
// plan loop, one run at a time.
func (p *runPlanner) batchSize(ctx context.Context, st *runState, r store.Run, log *zap.Logger) int {
	if !r.Options.Adaptive() {
		return r.Options.BatchSize
	}
	a := &st.adapt
	if a.size == 0 {
		a.size, a.noted = r.Options.BatchSize, r.Options.BatchSize
		if n := r.BatchesTotal(); n > 0 {
			// Planned before (another leader, or before a restart): go on
			// from the size of the last batch, and read back the newest
			// succeeded ones.
			if b, err := p.store.GetBatch(ctx, r.ID, n); err == nil && b.Size > 0 {
				a.size, a.noted = b.Size, b.Size
			}
			a.after = max(0, n-int64(sizeWindow)-int64(min(2*r.Options.MaxInFlight, store.MaxLimit)))
		}
		exportBatchSize(r, a.size)
	}
	if r.BatchesSucceeded <= a.seen {
		return a.size
	}
	fresh, err := p.readSamples(ctx, r, a)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("read the run's succeeded batches for its batch size; keeping it", zap.Int("batch_size", a.size), zap.Error(err))
		}
		return a.size
	}
	a.seen = r.BatchesSucceeded
	if fresh == 0 {
		return a.size
	}
	lo, hi := r.Options.BatchSizeBounds()
	next := nextBatchSize(sizing{target: r.Options.TargetBatchTime, min: lo, max: hi}, a.size, a.window, fresh)
	if next != a.size {
		log.Debug("batch size adapted", zap.Int("from", a.size), zap.Int("to", next))
		a.size = next
		exportBatchSize(r, next)
		if float64(next) >= 2*float64(a.noted) || 2*float64(next) <= float64(a.noted) {
			p.noteBatchSize(ctx, r, a.noted, next, a.window[len(a.window)-1])
			a.noted = next
		}
	}
	return a.size
}

// adaptiveWindow bounds free, the batches the planner may add to run r's
// window: until an adaptive run's first batch has finished, one batch at a
// time is in flight, so a batch size far off the target costs one batch
// at that size rather than max_in_flight of them.
func adaptiveWindow(r store.Run, free int64) int64 {
	if !r.Options.Adaptive() || r.BatchesSucceeded+r.BatchesFailed+r.BatchesCancelled > 0 {
		return free
	}
	return min(free, 1-r.BatchesEnqueued-r.BatchesRunning)
}

// readSamples adds the run's batches that succeeded since the last look
// to a's window and returns how many it added.
func (p *runPlanner) readSamples(ctx context.Context, r store.Run, a *adaptState) (int, error) {
	if a.read == nil {
		a.read = map[int64]bool{}
	}
	f := store.BatchFilter{States: []store.BatchState{store.BatchSucceeded}, Limit: store.MaxLimit, Cursor: store.EncodeCursor(a.after)}
	fresh, newest := 0, a.after
	for {
		page, err := p.store.ListBatches(ctx, r.ID, f)
		if err != nil {
			return 0, err
		}
		for _, b := range page.Items {
			newest = max(newest, b.Seq)
			if a.read[b.Seq] {
				continue
			}
			a.read[b.Seq] = true
			size := b.Size
			if size == 0 {
				size = r.Options.BatchSize // planned before sizes were recorded
			}
			a.window = append(a.window, batchSample{Size: size, Duration: b.Duration})
			fresh++
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if len(a.window) > sizeWindow {
		a.window = append(a.window[:0], a.window[len(a.window)-sizeWindow:]...)
	}
	// Next time, read again from a little below the newest: a batch below
	// it that is still running counts when it succeeds.
	a.after = max(a.after, newest-sampleRecheck)
	for seq := range a.read {
		if seq <= a.after {
			delete(a.read, seq)
		}
	}
	return min(fresh, sizeWindow), nil
}

// noteBatchSize records on the run's timeline that its batch size moved
// from one size to another (by 2× or more since the last note), and why.
// Keyed by the first batch planned with the new size, so two schedulers or
// a restart note it once.
func (p *runPlanner) noteBatchSize(ctx context.Context, r store.Run, from, to int, last batchSample) {
	verb := "grew"
	if to < from {
		verb = "shrank"
	}
	msg := fmt.Sprintf("adaptive batch size %s from %s to %s keys: a batch of %s took %s, the target is %s",
		verb, timeline.Count(int64(from)), timeline.Count(int64(to)), timeline.Count(int64(last.Size)),
		shortDuration(last.Duration), r.Options.TargetBatchTime)
	next := r.BatchesTotal() + 1
	timeline.Record(ctx, appender(p.store), p.log, store.RunEvent{RunID: r.ID, Kind: store.EventNote, Actor: timeline.Scheduler,
		Message: msg, Key: fmt.Sprintf("batch_size:%d", next)})
}

// shortDuration rounds d to about three significant digits for a message.
func shortDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
