package web

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
)

// errTooManyStreams is a stream refused by the caps.
type errTooManyStreams struct{ msg string }

func (e *errTooManyStreams) Error() string { return e.msg }

// runHub shares the polling of runs among their event streams: one
// goroutine per watched run reads it from the store every interval and
// hands changes to every stream of that run; it stops when the last stream
// leaves. It also caps the open streams, per identity and in all.
type runHub struct {
	store    store.Store
	log      *zap.Logger
	interval time.Duration
	maxAll   int
	maxEach  int

	mu      sync.Mutex
	open    int
	byWho   map[string]int
	watches map[int64]*runWatch
}

// runWatch is one watched run: its streams and how to stop its poll.
type runWatch struct {
	subs map[chan store.Run]struct{}
	stop context.CancelFunc
}

func newRunHub(st store.Store, log *zap.Logger, interval time.Duration, maxAll, maxEach int) *runHub {
	return &runHub{store: st, log: log, interval: interval, maxAll: maxAll, maxEach: maxEach,
		byWho: map[string]int{}, watches: map[int64]*runWatch{}}
}

// acquire takes a stream's place for who, or says why there is none.
func (h *runHub) acquire(who string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byWho[who] >= h.maxEach {
		return &errTooManyStreams{fmt.Sprintf("%s has %d event streams open, the most one identity may have; close some (pages of runs in other tabs) and try again", who, h.maxEach)}
	}
	if h.open >= h.maxAll {
		return &errTooManyStreams{fmt.Sprintf("the server has %d event streams open, the most it allows; try again later", h.maxAll)}
	}
	h.open++
	h.byWho[who]++
	return nil
}

// release gives back a place taken by acquire.
func (h *runHub) release(who string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open--
	if h.byWho[who]--; h.byWho[who] <= 0 {
		delete(h.byWho, who)
	}
}

// subscribe returns a channel of the run's changes after last (it holds
// the latest one: a slow reader skips intermediate states, never the last)
// and a function to leave. The channel is closed when the run ended or is
// gone.
func (h *runHub) subscribe(last store.Run) (<-chan store.Run, func()) {
	ch := make(chan store.Run, 1)
	h.mu.Lock()
	w, ok := h.watches[last.ID]
	if !ok {
		ctx, cancel := context.WithCancel(context.Background())
		w = &runWatch{subs: map[chan store.Run]struct{}{}, stop: cancel}
		h.watches[last.ID] = w
		go h.poll(ctx, w, last)
	}
	w.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := w.subs[ch]; !ok {
			return
		}
		delete(w.subs, ch)
		if len(w.subs) == 0 {
			w.stop()
			if h.watches[last.ID] == w {
				delete(h.watches, last.ID)
			}
		}
	}
}

// poll is the one reader of a watched run.
func (h *runHub) poll(ctx context.Context, w *runWatch, last store.Run) {
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur, err := h.store.GetRun(ctx, last.ID)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, store.ErrNotFound) {
				h.log.Warn("poll run for event streams", zap.Int64("run", last.ID), zap.Error(err))
				continue
			}
			h.end(w, last.ID, nil)
			return
		}
		if cur.State == last.State && cur.Counters == last.Counters && cur.Total == last.Total && cur.UpdatedAt.Equal(last.UpdatedAt) {
			continue
		}
		last = cur
		if cur.State.Terminal() {
			h.end(w, last.ID, &cur)
			return
		}
		h.mu.Lock()
		for ch := range w.subs {
			offer(ch, cur)
		}
		h.mu.Unlock()
	}
}

// end hands the final state (if any) to the watch's streams and closes
// them.
func (h *runHub) end(w *runWatch, id int64, final *store.Run) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range w.subs {
		if final != nil {
			offer(ch, *final)
		}
		close(ch)
		delete(w.subs, ch)
	}
	w.stop()
	if h.watches[id] == w {
		delete(h.watches, id)
	}
}

// offer puts run in ch, replacing a value not yet read; only the hub
// writes, under its lock, so this never blocks.
func offer(ch chan store.Run, run store.Run) {
	select {
	case <-ch:
	default:
	}
	ch <- run
}
