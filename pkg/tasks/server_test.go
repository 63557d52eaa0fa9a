package tasks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// An idle worker starts a batch enqueued after it went to sleep without
// waiting for asynq's own one-second poll (which was most of a run's time
// to first batch): with the default poll interval (10ms) every task starts
// well within a bound that a one-second poll — sleeping half to one and a
// half of it — would miss for most of them. The bound is generous (70 poll
// intervals) so a loaded machine does not fail the test.
func TestIdleServerPicksUpTasksWithoutWaitingForAsynqsPoll(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	rdb, prefix := testenv.Redis(t)
	queue := prefix + "q"
	started := make(chan time.Time, 1)
	srv, err := tasks.NewServer(rdb, tasks.ServerConfig{Queue: queue, Concurrency: 2, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(ctx, tasks.HandlerFunc(func(context.Context, tasks.BatchPayload, tasks.Attempt) error {
			started <- time.Now()
			return nil
		}))
	}()
	defer func() { cancel(); <-done }()

	client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	const bound = 700 * time.Millisecond
	for seq := int64(1); seq <= 6; seq++ {
		// Let the server find the queue empty and go to sleep first.
		time.Sleep(50 * time.Millisecond)
		enqueued := time.Now()
		if _, err := client.EnqueueBatch(context.Background(), tasks.BatchPayload{RunID: 1, Seq: seq}, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-started:
			if wait := at.Sub(enqueued); wait > bound {
				t.Errorf("task %d started %s after it was enqueued to an idle server, want within %s", seq, wait, bound)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("task %d not started within 10s", seq)
		}
	}
}

func TestServerConfigDefaultsAndValidation(t *testing.T) {
	got := tasks.ServerConfig{}.WithDefaults()
	if got.Queue != tasks.DefaultQueue || got.ShutdownTimeout != tasks.ShutdownTimeoutDefault ||
		got.PollInterval != tasks.PollIntervalDefault || got.Concurrency <= 0 || got.RetryDelay == nil || got.Logger == nil {
		t.Errorf("ServerConfig{}.WithDefaults() = %+v, want every default set", got)
	}
	set := tasks.ServerConfig{Queue: "q", Concurrency: 3, ShutdownTimeout: time.Minute, PollInterval: time.Second}.WithDefaults()
	if set.Queue != "q" || set.Concurrency != 3 || set.ShutdownTimeout != time.Minute || set.PollInterval != time.Second {
		t.Errorf("WithDefaults changed set fields: %+v", set)
	}

	for _, tt := range []struct {
		name    string
		cfg     tasks.ServerConfig
		wantErr string
	}{
		{"negative concurrency", tasks.ServerConfig{Concurrency: -1}, "Concurrency must not be negative"},
		{"negative shutdown timeout", tasks.ServerConfig{ShutdownTimeout: -time.Second}, "ShutdownTimeout must not be negative"},
		{"negative poll interval", tasks.ServerConfig{PollInterval: -time.Millisecond}, "PollInterval must not be negative"},
		{"prefetch below off", tasks.ServerConfig{Prefetch: -2}, "Prefetch must be positive, 0 (default) or PrefetchOff (-1), got -2"},
		{"negative prefetch wait", tasks.ServerConfig{PrefetchWait: -time.Second}, "PrefetchWait must not be negative"},
		{"negative delayed check interval", tasks.ServerConfig{DelayedCheckInterval: -time.Second}, "DelayedCheckInterval must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Validation fails before the Redis client is used.
			_, err := tasks.NewServer(nil, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewServer error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
