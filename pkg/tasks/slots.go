package tasks

import (
	"context"
	"sync"
	"time"
)

// slots bounds how many batches a server runs at once. asynq's own
// concurrency is larger by the prefetch: its extra slots take tasks from
// the queue while every one of ours is busy, and wait here, so that a slot
// that frees up starts its next batch at once — asynq itself takes a task
// only after the last one was marked complete, two round trips to Redis
// during which the slot would stand idle.
type slots struct {
	sem  chan struct{}
	wait time.Duration

	once     sync.Once
	stopping chan struct{}
}

func newSlots(n int, wait time.Duration) *slots {
	return &slots{sem: make(chan struct{}, n), wait: wait, stopping: make(chan struct{})}
}

// acquire takes a slot. When the task may go back to the queue, it returns
// false once no slot freed up within the wait, the server is stopping, or
// ctx ended; otherwise it waits for a slot (or ctx).
func (s *slots) acquire(ctx context.Context, mayGiveBack bool) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
	}
	if !mayGiveBack {
		select {
		case s.sem <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return true
	case <-t.C:
	case <-s.stopping:
	case <-ctx.Done():
	}
	return false
}

func (s *slots) release() { <-s.sem }

// stop makes every waiting and later acquire give its task back.
func (s *slots) stop() { s.once.Do(func() { close(s.stopping) }) }
