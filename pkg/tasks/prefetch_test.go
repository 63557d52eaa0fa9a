package tasks_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// blockingServer runs a server whose handler records each start and blocks
// batch 1 until release is closed.
type blockingServer struct {
	started chan tasks.BatchPayload
	release chan struct{}
	running atomic.Int32
	most    atomic.Int32
	tries   sync.Map // seq → attempts seen
	stop    func()
}

func startBlocking(t *testing.T, rdb redis.UniversalClient, cfg tasks.ServerConfig, bs *blockingServer) {
	t.Helper()
	srv, err := tasks.NewServer(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- srv.Run(ctx, tasks.HandlerFunc(func(_ context.Context, p tasks.BatchPayload, a tasks.Attempt) error {
			n := bs.running.Add(1)
			defer bs.running.Add(-1)
			for m := bs.most.Load(); n > m && !bs.most.CompareAndSwap(m, n); m = bs.most.Load() {
			}
			bs.tries.Store(p.Seq, a.Retried)
			bs.started <- p
			if p.Seq == 1 {
				<-bs.release
			}
			return nil
		}))
	}()
	var once sync.Once
	bs.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(bs.stop)
}

func waitState(t *testing.T, c *tasks.Client, p tasks.BatchPayload, want ...tasks.TaskState) tasks.TaskState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := c.BatchTaskState(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if got == w {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s after 10s, want one of %v", p.TaskID(), got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While every slot is busy, a server holds the next task ready (asynq
// counts it active) but never runs more batches at once than its
// concurrency; with prefetch off the task stays in the queue.
func TestBusyServerHoldsTheNextTaskButRunsNoMoreThanItsConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	for _, tc := range []struct {
		name     string
		prefetch int
		want     tasks.TaskState
	}{
		{"default prefetch", 0, tasks.TaskActive},
		{"prefetch off", tasks.PrefetchOff, tasks.TaskPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := testenv.Redis(t)
			queue := prefix + "q"
			client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
			if err != nil {
				t.Fatal(err)
			}
			bs := &blockingServer{started: make(chan tasks.BatchPayload, 8), release: make(chan struct{})}
			startBlocking(t, rdb, tasks.ServerConfig{Queue: queue, Concurrency: 1, Prefetch: tc.prefetch, PrefetchWait: time.Minute, ShutdownTimeout: 5 * time.Second}, bs)
			for seq := int64(1); seq <= 3; seq++ {
				if _, err := client.EnqueueBatch(context.Background(), tasks.BatchPayload{RunID: 1, Seq: seq}, tasks.EnqueueOptions{MaxAttempts: 3}); err != nil {
					t.Fatal(err)
				}
				if seq == 1 {
					if p := <-bs.started; p.Seq != 1 {
						t.Fatalf("first batch started is %d, want 1", p.Seq)
					}
				}
			}
			second := tasks.BatchPayload{RunID: 1, Seq: 2}
			waitState(t, client, second, tc.want)
			time.Sleep(50 * time.Millisecond) // a wrongly started batch would show by now
			if got := waitState(t, client, tasks.BatchPayload{RunID: 1, Seq: 3}, tasks.TaskPending); got != tasks.TaskPending {
				t.Errorf("third task is %s, want pending", got)
			}
			if len(bs.started) != 0 {
				t.Fatalf("batch %d started while batch 1 held the only slot", (<-bs.started).Seq)
			}
			close(bs.release)
			for _, want := range []int64{2, 3} {
				select {
				case p := <-bs.started:
					if p.Seq != want {
						t.Errorf("started batch %d, want %d", p.Seq, want)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("batch %d not started within 10s of the slot freeing", want)
				}
			}
			if m := bs.most.Load(); m != 1 {
				t.Errorf("%d batches ran at once, want at most the concurrency 1", m)
			}
		})
	}
}

// A held task goes back to the queue when no slot frees up within the
// prefetch wait, or when its server stops, without counting an attempt,
// and another server runs it; one on its last attempt is not given back
// (asynq would archive it) but runs in the stopping server's drain.
func TestHeldTaskGoesBackWithoutCountingAnAttempt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	for _, tc := range []struct {
		name        string
		maxAttempts int
		wait        time.Duration
		// onFirst: the held batch runs on the stopping server (last
		// attempt) rather than on the second one.
		onFirst bool
	}{
		{"server stops", 3, time.Minute, false},
		{"no slot within the wait", 3, 20 * time.Millisecond, false},
		{"last attempt runs in the drain", 1, time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := testenv.Redis(t)
			queue := prefix + "q"
			client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
			if err != nil {
				t.Fatal(err)
			}
			cfg := tasks.ServerConfig{Queue: queue, Concurrency: 1, PrefetchWait: tc.wait, ShutdownTimeout: 10 * time.Second}
			first := &blockingServer{started: make(chan tasks.BatchPayload, 8), release: make(chan struct{})}
			startBlocking(t, rdb, cfg, first)
			if _, err := client.EnqueueBatch(context.Background(), tasks.BatchPayload{RunID: 1, Seq: 1}, tasks.EnqueueOptions{MaxAttempts: 3}); err != nil {
				t.Fatal(err)
			}
			<-first.started
			held := tasks.BatchPayload{RunID: 1, Seq: 2}
			if _, err := client.EnqueueBatch(context.Background(), held, tasks.EnqueueOptions{MaxAttempts: tc.maxAttempts}); err != nil {
				t.Fatal(err)
			}
			waitState(t, client, held, tasks.TaskActive)

			stopped := make(chan struct{})
			if tc.name != "no slot within the wait" {
				go func() { first.stop(); close(stopped) }()
			}
			second := &blockingServer{started: make(chan tasks.BatchPayload, 8), release: make(chan struct{})}
			if !tc.onFirst {
				// The held task is given back; the second server runs it
				// while batch 1 still holds the first server's only slot.
				waitState(t, client, held, tasks.TaskPending, tasks.TaskRetry, tasks.TaskActive)
				startBlocking(t, rdb, cfg, second)
				select {
				case p := <-second.started:
					if p.Seq != 2 {
						t.Fatalf("second server started batch %d, want 2", p.Seq)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("given-back task not run by the second server within 10s")
				}
				if r, _ := second.tries.Load(int64(2)); r != 0 {
					t.Errorf("given-back task ran as retry %v, want 0 (giving back is no attempt)", r)
				}
				close(first.release)
			} else {
				close(first.release)
				select {
				case p := <-first.started:
					if p.Seq != 2 {
						t.Fatalf("stopping server started batch %d, want 2", p.Seq)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("held task on its last attempt not run in the drain within 10s")
				}
			}
			if tc.name != "no slot within the wait" {
				<-stopped
			}
			if got := waitState(t, client, held, tasks.TaskCompleted); got != tasks.TaskCompleted {
				t.Errorf("held task ended %s, want completed", got)
			}
			if _, ranOnFirst := first.tries.Load(int64(2)); ranOnFirst != tc.onFirst {
				t.Errorf("held task ran on the first server: %v, want %v", ranOnFirst, tc.onFirst)
			}
		})
	}
}
