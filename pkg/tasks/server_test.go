package tasks_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// An idle worker starts a batch soon after it is enqueued: the queue server
// polls an empty queue every 10ms or so (asynq's default is 1s, which was
// most of a run's time to first batch).
func TestIdleServerPicksUpTasksPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	rdb, prefix := testenv.Redis(t)
	queue := prefix + "q"
	started := make(chan time.Time, 1)
	srv := tasks.NewServer(rdb, tasks.ServerConfig{Queue: queue, Concurrency: 2, ShutdownTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(ctx, tasks.HandlerFunc(func(context.Context, tasks.BatchPayload, tasks.Attempt) error {
			started <- time.Now()
			return nil
		}))
	}()
	defer func() { cancel(); <-done }()

	client := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	var waits []time.Duration
	for seq := int64(1); seq <= 11; seq++ {
		// Let the server find the queue empty and go to sleep first.
		time.Sleep(30 * time.Millisecond)
		enqueued := time.Now()
		if _, err := client.EnqueueBatch(context.Background(), tasks.BatchPayload{RunID: 1, Seq: seq}, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-started:
			waits = append(waits, at.Sub(enqueued))
		case <-time.After(5 * time.Second):
			t.Fatalf("task %d not started within 5s", seq)
		}
	}
	slices.Sort(waits)
	// With a 50ms poll the median wait was about 27ms.
	if median := waits[len(waits)/2]; median > 20*time.Millisecond {
		t.Errorf("median wait from enqueue to start is %s (waits %v), want at most 20ms", median, waits)
	}
}
