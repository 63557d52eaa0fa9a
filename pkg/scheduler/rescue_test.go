package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// A worker whose heartbeat stopped (killed with SIGKILL) loses its claims
// within seconds: its batch is queued again long before its one-hour claim
// lease would have let it; a live worker's claim is left alone.
func TestDeadWorkersClaimsAreRescued(t *testing.T) {
	ctx := context.Background()
	st, rdb, prefix := newRedisStore(t)
	presence := worker.NewPresence(rdb, prefix+"workers")
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "rescued", Kind: store.KindBackfill, CreatedBy: "test",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, r.ID, store.PlanStep{To: "[2]", Done: true, Enqueue: true,
		Batches: []store.KeyRange{{Hi: "[1]"}, {Lo: "[1]", Hi: "[2]"}}}); err != nil {
		t.Fatal(err)
	}
	for seq, w := range map[int64]string{1: "dead:1", 2: "alive:2"} {
		if _, err := st.ClaimBatch(ctx, r.ID, seq, store.Claim{Worker: w, Token: w, Lease: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if err := presence.Beat(ctx, worker.WorkerInfo{ID: "dead:1", Batches: []worker.BatchRef{{RunID: r.ID, Seq: 1}}}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := presence.Beat(ctx, worker.WorkerInfo{ID: "alive:2", Batches: []worker.BatchRef{{RunID: r.ID, Seq: 2}}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	startScheduler(t, st, rdb, prefix, scheduler.Config{PresenceKey: prefix + "workers", WorkerCheckInterval: 200 * time.Millisecond})

	client, err := tasks.NewClient(rdb, tasks.Config{Queue: prefix + "q"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := st.GetBatch(ctx, r.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		state, err := client.BatchTaskState(ctx, tasks.BatchPayload{RunID: r.ID, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		if b.LeaseUntil != nil && !b.LeaseUntil.After(time.Now()) && state == tasks.TaskPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead worker's batch: lease until %v, task %s; want its lease ended and its task queued again within 5s", b.LeaseUntil, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := st.GetBatch(ctx, r.ID, 2); b.LeaseUntil == nil || time.Until(*b.LeaseUntil) < 50*time.Minute {
		t.Fatalf("live worker's claim changed: lease until %v", b.LeaseUntil)
	}
	// The dead worker is forgotten; the live one stays.
	deadline = time.Now().Add(5 * time.Second)
	for {
		ws, err := presence.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 1 && ws[0].ID == "alive:2" && ws[0].Alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers registry %+v, want only alive:2", ws)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
