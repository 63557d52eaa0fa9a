package scheduler

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// runningRunWith makes a running run with n batches planned enqueued.
func runningRunWith(t *testing.T, st store.Store, n int) store.Run {
	t.Helper()
	ctx := context.Background()
	r := newTestRun(t, st, store.RunOptions{MaxInFlight: n})
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	step := store.PlanStep{Done: true, Enqueue: true}
	for i := range n {
		lo, hi := "", string(rune('a'+i))
		if i > 0 {
			lo = string(rune('a' + i - 1))
		}
		step.Batches = append(step.Batches, store.KeyRange{Lo: lo, Hi: hi})
		step.To = hi
	}
	if _, err := st.AppendBatches(ctx, r.ID, step); err != nil {
		t.Fatal(err)
	}
	return getRun(t, st, r.ID)
}

// The reconciler enqueues again a queued batch whose task is lost, starts
// over one whose task ended without the batch ending, rescues a running
// batch whose claim expired while asynq still holds its task, and leaves
// live tasks alone.
func TestReconcilerRequeuesLostTasks(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	q := newFakeQueue()
	core, logs := observer.New(zap.InfoLevel)
	c := &reconciler{store: st, queue: q, grace: 0, log: zap.New(core)}
	r := runningRunWith(t, st, 4)
	id := func(seq int64) string { return tasks.TaskID(r.ID, seq, 0) }
	q.set(id(1), tasks.TaskPending)  // live: left alone
	q.set(id(3), tasks.TaskArchived) // ended: started over
	// Batch 2's task is missing. Batch 4 runs under a claim that expired,
	// its task still active in asynq (the worker died).
	if _, err := st.ClaimBatch(ctx, r.ID, 4, store.Claim{Worker: "dead", Token: "dead", Lease: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	q.set(id(4), tasks.TaskActive)
	time.Sleep(5 * time.Millisecond)

	c.reconcile(ctx)
	want := []string{id(2), id(3), id(4) + ":r1"}
	if got := q.enqueued(); !sameSet(got, want) {
		t.Fatalf("re-enqueued %v, want %v", got, want)
	}
	if !slices.Contains(q.deleted, id(3)) {
		t.Errorf("the ended task of batch 3 was not deleted before it was enqueued again: deleted %v", q.deleted)
	}
	if n := logs.FilterMessage("re-enqueued a lost batch task").Len(); n != 3 {
		t.Errorf("%d re-enqueues logged, want 3", n)
	}
	c.reconcile(ctx)
	if got := q.enqueued(); len(got) != 3 {
		t.Fatalf("a second look enqueued %v, want nothing more", got)
	}
}

// Within the grace an enqueued batch's missing task may still be on its way
// (the planner writes the store first): it is left alone, unless the run
// was just resumed.
func TestReconcilerGrace(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	q := newFakeQueue()
	c := &reconciler{store: st, queue: q, grace: time.Hour, log: zaptest.NewLogger(t)}
	r := runningRunWith(t, st, 1)
	c.reconcile(ctx)
	if got := q.enqueued(); len(got) != 0 {
		t.Fatalf("re-enqueued %v within the grace", got)
	}
	c.reconcileRun(ctx, r, true)
	if got := q.enqueued(); len(got) != 1 {
		t.Fatalf("a resumed run's lost task: re-enqueued %v, want it", got)
	}
}
