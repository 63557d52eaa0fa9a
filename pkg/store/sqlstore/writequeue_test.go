package sqlstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// The queue hands the lock to waiters by priority, then in arrival order.
func TestWriteQueueOrder(t *testing.T) {
	var q writeQueue
	ctx := context.Background()
	if err := q.acquire(ctx, prioFinish); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	enqueue := func(name string, prio int) {
		q.mu.Lock()
		before := len(q.waiters[prio])
		q.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := q.acquire(ctx, prio); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			q.release()
		}()
		// Let it queue before the next one arrives.
		for {
			q.mu.Lock()
			n := len(q.waiters[prio])
			q.mu.Unlock()
			if n > before {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	enqueue("claim1", prioStart)
	enqueue("complete1", prioFinish)
	enqueue("claim2", prioStart)
	enqueue("complete2", prioFinish)
	q.release()
	wg.Wait()
	want := []string{"complete1", "complete2", "claim1", "claim2"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	if q.held {
		t.Fatal("the queue is still held after every waiter released it")
	}
}

// A waiter whose context ends leaves the queue, and the lock still reaches
// the next waiter.
func TestWriteQueueCancel(t *testing.T) {
	var q writeQueue
	if err := q.acquire(context.Background(), prioFinish); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := q.acquire(ctx, prioStart); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire with an ending context: %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.acquire(context.Background(), prioStart) }()
	time.Sleep(10 * time.Millisecond)
	q.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next waiter never got the lock")
	}
	q.release()
	if q.held || len(q.waiters[prioStart]) != 0 {
		t.Fatalf("queue held %v with %d waiters, want free and empty", q.held, len(q.waiters[prioStart]))
	}
}
