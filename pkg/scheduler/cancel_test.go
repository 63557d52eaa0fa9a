package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// startScheduler runs a scheduler on the store until the test ends.
func startScheduler(t *testing.T, st store.Store, rdb *redis.Client, prefix string, cfg scheduler.Config) {
	t.Helper()
	cfg.Store, cfg.Redis = st, rdb
	if cfg.Registry == nil {
		cfg.Registry = engine.NewRegistry()
	}
	cfg.Events = events.New(rdb, prefix+"events")
	cfg.Tasks = tasks.Config{Queue: prefix + "q"}
	cfg.LeaderKey = prefix + "leader"
	cfg.PollInterval = 100 * time.Millisecond
	cfg.Logger = zaptest.NewLogger(t)
	sch, err := scheduler.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sch.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func newRedisStore(t *testing.T) (store.Store, *redis.Client, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return st, rdb, prefix
}

// A worker froze mid-batch, the run was cancelled, the worker was killed:
// nobody extends the batch's claim. Once its lease expires the batch is
// cancelled and the run reaches cancelled (it used to stay cancelling for
// good, refusing pause, resume, cancel and retry).
func TestCancellingRunWithDeadWorkerIsCancelled(t *testing.T) {
	ctx := context.Background()
	st, rdb, prefix := newRedisStore(t)
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "frozen", Kind: store.KindBackfill, CreatedBy: "test",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, r.ID, store.PlanStep{To: "[1]", Done: true, Enqueue: true, Batches: []store.KeyRange{{Hi: "[1]"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ClaimBatch(ctx, r.ID, 1, store.Claim{Worker: "frozen:1", Token: "frozen", Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.CancelRun(ctx, r.ID); err != nil || got.State != store.RunCancelling {
		t.Fatalf("CancelRun: %s, %v", got.State, err)
	}
	startScheduler(t, st, rdb, prefix, scheduler.Config{})

	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := st.GetRun(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == store.RunCancelled {
			if got.BatchesCancelled != 1 || got.BatchesRunning != 0 {
				t.Fatalf("cancelled run's counters %+v, want its batch cancelled", got.Counters)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s with %d batches running 10s after its only claim expired", got.State, got.BatchesRunning)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := st.CompleteBatch(ctx, r.ID, 1, "frozen", store.Result{RowsRead: 1, RowsWritten: 1}); err == nil {
		t.Fatal("the frozen worker's late commit was accepted")
	}
}
