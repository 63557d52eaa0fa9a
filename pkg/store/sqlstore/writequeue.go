package sqlstore

import (
	"context"
	"slices"
	"sync"
)

// Priorities of the write queue.
const (
	// prioFinish is for work on what is in flight: completing, failing or
	// extending a claim, and every other change.
	prioFinish = iota
	// prioStart is for claims, which start new work and can wait: a claim
	// that queued behind a completion finds the batch finished instead of
	// taking it over from an attempt that was about to succeed.
	prioStart
	numPrios
)

// writeQueue is an in-process lock for a SQLite store's writer, handed to
// waiters first by priority, then in arrival order.
type writeQueue struct {
	mu      sync.Mutex
	held    bool
	waiters [numPrios][]chan struct{}
}

// acquire waits for the lock or for ctx to end.
func (q *writeQueue) acquire(ctx context.Context, prio int) error {
	q.mu.Lock()
	if !q.held {
		q.held = true
		q.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	q.waiters[prio] = append(q.waiters[prio], ch)
	q.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		if i := slices.Index(q.waiters[prio], ch); i >= 0 {
			q.waiters[prio] = slices.Delete(q.waiters[prio], i, i+1)
			q.mu.Unlock()
			return ctx.Err()
		}
		q.mu.Unlock()
		// The lock was handed over as ctx ended: pass it on.
		q.release()
		return ctx.Err()
	}
}

// release hands the lock to the first waiter of the highest priority, or
// frees it.
func (q *writeQueue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for p := range q.waiters {
		if len(q.waiters[p]) > 0 {
			ch := q.waiters[p][0]
			q.waiters[p] = q.waiters[p][1:]
			close(ch)
			return
		}
	}
	q.held = false
}
