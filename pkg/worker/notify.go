package worker

import (
	"context"
	"sync"
	"time"

	"github.com/dripflow/dripflow/pkg/events"
)

// notifier tells the scheduler that runs changed (a batch of theirs
// finished) off the batches' path: the handler returns at once, and at most
// one publish per run is in flight — completions that come meanwhile fold
// into one more. Under load that is one event for many batches, which the
// scheduler would have coalesced anyway; a publish lost in a crash is made up
// for by the scheduler's poll.
type notifier struct {
	bus *events.Bus

	mu      sync.Mutex
	pending map[int64]bool // run → another publish is due after the one in flight
	closed  bool           // wait has begun: publish in the caller
	wg      sync.WaitGroup
}

func newNotifier(bus *events.Bus) *notifier {
	return &notifier{bus: bus, pending: map[int64]bool{}}
}

// changed publishes that run id changed, soon.
func (n *notifier) changed(id int64) {
	n.mu.Lock()
	if n.closed {
		// A batch that outlived the worker's drain: no new goroutine
		// once wait has begun.
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.bus.RunChanged(ctx, id)
		return
	}
	defer n.mu.Unlock()
	if _, inFlight := n.pending[id]; inFlight {
		n.pending[id] = true
		return
	}
	n.pending[id] = false
	n.wg.Add(1)
	go n.publish(id)
}

func (n *notifier) publish(id int64) {
	defer n.wg.Done()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.bus.RunChanged(ctx, id)
		cancel()
		n.mu.Lock()
		if n.pending[id] {
			n.pending[id] = false
			n.mu.Unlock()
			continue
		}
		delete(n.pending, id)
		n.mu.Unlock()
		return
	}
}

// wait returns once every publish in flight has been made; later changes
// are published by their callers.
func (n *notifier) wait() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
}
