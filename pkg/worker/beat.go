package worker

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
)

// hold records that this worker processes batch b until the returned
// function is called, and has the next heartbeat say so at once.
func (w *Worker) hold(b store.Batch) (release func()) {
	ref := BatchRef{RunID: b.RunID, Seq: b.Seq}
	w.mu.Lock()
	w.held[ref]++
	w.mu.Unlock()
	w.wakeBeat()
	return func() {
		w.mu.Lock()
		if w.held[ref]--; w.held[ref] <= 0 {
			delete(w.held, ref)
		}
		w.mu.Unlock()
	}
}

func (w *Worker) wakeBeat() {
	select {
	case w.beatNow <- struct{}{}:
	default:
	}
}

// info is this worker's registry record now.
func (w *Worker) info() WorkerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	bs := make([]BatchRef, 0, len(w.held))
	for ref := range w.held {
		bs = append(bs, ref)
	}
	return WorkerInfo{ID: w.cfg.ID, Queue: w.cfg.Queue, Concurrency: w.cfg.Concurrency,
		StartedAt: w.started.UTC(), LastHeartbeat: time.Now().UTC(), Batches: bs}
}

// beatSpacing is the least time between two heartbeats written because
// the worker claimed a batch.
const beatSpacing = 250 * time.Millisecond

// beat writes the worker's heartbeat every HeartbeatInterval (and, at most
// every beatSpacing, when it claims a batch) until stop is called; stop removes the worker from the
// registry, its batches being drained by then.
func (w *Worker) beat(ctx context.Context) (stop func()) {
	// Beats go on while a stopping worker drains its batches.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	write := func() {
		wctx, c := context.WithTimeout(bctx, w.cfg.HeartbeatInterval)
		defer c()
		if err := w.presence.Beat(wctx, w.info(), w.cfg.HeartbeatTTL); err != nil && bctx.Err() == nil {
			w.log.Warn("worker heartbeat", zap.Error(err))
		}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.HeartbeatInterval)
		defer t.Stop()
		for {
			write()
			last := time.Now()
			select {
			case <-bctx.Done():
				return
			case <-t.C:
			case <-w.beatNow:
				// A claimed batch shows in the registry within
				// beatSpacing, but however fast batches go, beats are not
				// written more often than that: a beat per batch was a
				// Redis round trip per batch.
				if d := beatSpacing - time.Since(last); d > 0 {
					select {
					case <-bctx.Done():
						return
					case <-time.After(d):
					}
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		fctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer c()
		if err := w.presence.Forget(fctx, w.cfg.ID); err != nil {
			w.log.Warn("leave workers registry", zap.Error(err))
		}
	}
}
