package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// A running worker is in the registry, alive, with the batch it holds; a
// stopped one has left it.
func TestWorkerHeartbeat(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	reg := engine.NewRegistry()
	if err := reg.Register(slowJob{d: 2 * time.Second, attempts: &attempts}); err != nil {
		t.Fatal(err)
	}
	queue := prefix + "q"
	presence := worker.NewPresence(rdb, prefix+"workers")
	w, err := worker.New(worker.Config{Store: st, Redis: rdb, Registry: reg, Events: events.New(rdb, prefix+"events"),
		Queue: queue, Concurrency: 1, ShutdownTimeout: 5 * time.Second, ID: "w:1", PresenceKey: prefix + "workers",
		HeartbeatInterval: 100 * time.Millisecond, HeartbeatTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	defer func() { stop(); <-done }()

	run, err := st.CreateRun(ctx, store.NewRun{Definition: "slow", Kind: store.KindBackfill, CreatedBy: "test", Options: slowJob{}.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: "[1]", Done: true, Enqueue: true, Batches: []store.KeyRange{{Hi: "[1]"}}}); err != nil {
		t.Fatal(err)
	}
	client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.EnqueueBatch(ctx, tasks.BatchPayload{RunID: run.ID, Seq: 1}, tasks.EnqueueOptions{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, err := presence.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 1 && ws[0].ID == "w:1" && ws[0].Alive && len(ws[0].Batches) == 1 &&
			ws[0].Batches[0] == (worker.BatchRef{RunID: run.ID, Seq: 1}) && time.Since(ws[0].LastHeartbeat) < time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry %+v, want w:1 alive holding batch %d/1", ws, run.ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if b, _ := st.GetBatch(ctx, run.ID, 1); b.State != store.BatchSucceeded {
		t.Fatalf("batch %s after a graceful stop, want succeeded (drained)", b.State)
	}
	if ws, err := presence.List(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("registry after the worker stopped: %+v, %v; want empty", ws, err)
	}
}
