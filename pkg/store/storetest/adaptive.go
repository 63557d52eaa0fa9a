package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/store"
)

// An adaptive run keeps its target and bounds; a run without them reads
// as not adaptive.
func testAdaptiveRunOptions(t *testing.T, s store.Store) {
	n := newRun("adaptive")
	n.Options.TargetBatchTime = 200 * time.Millisecond
	n.Options.MinBatchSize = 10
	n.Options.MaxBatchSize = 50_000
	created := mustCreate(t, s, n)
	if diff := cmp.Diff(n.Options, created.Options); diff != "" {
		t.Errorf("CreateRun: options (-want +got):\n%s", diff)
	}
	got := mustGetRun(t, s, created.ID)
	if diff := cmp.Diff(n.Options, got.Options); diff != "" {
		t.Errorf("GetRun: options (-want +got):\n%s", diff)
	}
	if !got.Options.Adaptive() {
		t.Errorf("GetRun: run with a target reads as not adaptive")
	}
	page, err := s.ListRuns(ctx(t), store.RunFilter{Definition: "adaptive"})
	if err != nil || len(page.Items) != 1 || !cmp.Equal(page.Items[0].Options, n.Options) {
		t.Errorf("ListRuns: %+v, %v; want the run with options %+v", page.Items, err, n.Options)
	}

	plain := mustGetRun(t, s, mustCreate(t, s, newRun("plain")).ID)
	if plain.Options.Adaptive() || plain.Options.MinBatchSize != 0 || plain.Options.MaxBatchSize != 0 {
		t.Errorf("run without a target: options %+v, want not adaptive, no bounds", plain.Options)
	}
}

// Out-of-range targets and bounds are refused naming the field, and create
// nothing.
func testAdaptiveRunOptionsRejected(t *testing.T, s store.Store) {
	adaptive := func(n *store.NewRun) { n.Options.TargetBatchTime = time.Second } // batch size 100
	tests := []struct {
		field  string
		mutate func(*store.NewRun)
	}{
		{"target_batch_time", func(n *store.NewRun) { n.Options.TargetBatchTime = time.Millisecond }},
		{"target_batch_time", func(n *store.NewRun) { n.Options.TargetBatchTime = -time.Second }},
		{"target_batch_time", func(n *store.NewRun) { n.Options.TargetBatchTime = store.MaxTargetBatchTime + time.Millisecond }},
		{"min_batch_size", func(n *store.NewRun) { adaptive(n); n.Options.MinBatchSize = -1 }},
		{"min_batch_size", func(n *store.NewRun) { adaptive(n); n.Options.MinBatchSize = 101 }},
		{"min_batch_size", func(n *store.NewRun) { n.Options.MinBatchSize, n.Options.MaxBatchSize = 50, 40 }},
		{"max_batch_size", func(n *store.NewRun) { adaptive(n); n.Options.MaxBatchSize = 99 }},
		{"max_batch_size", func(n *store.NewRun) { adaptive(n); n.Options.MaxBatchSize = store.MaxBatchSize + 1 }},
	}
	for i, tt := range tests {
		n := newRun("bad_adaptive")
		tt.mutate(&n)
		_, err := s.CreateRun(ctx(t), n)
		wantArgumentError(t, fmt.Sprintf("case %d: CreateRun with bad %s", i, tt.field), err, tt.field)
	}
	page, err := s.ListRuns(ctx(t), store.RunFilter{})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	if len(page.Items) != 0 {
		t.Fatalf("bad input created %d runs, want none", len(page.Items))
	}
}

// Each batch keeps the size it was planned with, through both ways of
// appending (pending and enqueued), every read, and its attempts.
func testBatchPlannedSize(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	krs := ranges(0, 3)
	for i := range krs {
		krs[i].Size = []int{100, 250, 60}[i]
	}
	bs, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{To: keyOf(3), Batches: krs})
	if err != nil {
		t.Fatalf("AppendBatches: %v", err)
	}
	more := ranges(3, 2)
	more[0].Size, more[1].Size = 5000, 0
	enq, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: keyOf(3), To: keyOf(5), Done: true, Enqueue: true, Batches: more})
	if err != nil {
		t.Fatalf("AppendBatches enqueued: %v", err)
	}
	want := []int{100, 250, 60, 5000, 0}
	for i, b := range append(bs, enq...) {
		if b.Size != want[i] {
			t.Errorf("AppendBatches: batch %s size %d, want %d", b.ID(), b.Size, want[i])
		}
		if got := mustGetBatch(t, s, r.ID, b.Seq); got.Size != want[i] {
			t.Errorf("GetBatch %s: size %d, want %d", b.ID(), got.Size, want[i])
		}
	}
	for i, b := range allBatches(t, s, r.ID, store.BatchFilter{}) {
		if b.Size != want[i] {
			t.Errorf("ListBatches: batch %s size %d, want %d", b.ID(), b.Size, want[i])
		}
	}

	// The size stays through a claim, a completion and a failure.
	mustClaim(t, s, bs[1], "t2")
	if done, err := s.CompleteBatch(ctx(t), r.ID, 2, "t2", store.Result{RowsRead: 250, Duration: time.Second}); err != nil || done.Size != 250 {
		t.Errorf("CompleteBatch: size %d, %v; want 250", done.Size, err)
	}
	mustClaim(t, s, enq[0], "t4")
	failed, err := s.FailBatch(ctx(t), r.ID, 4, "t4", store.Failure{Message: "boom", Final: true})
	if err != nil || failed.Size != 5000 {
		t.Errorf("FailBatch: size %d, %v; want 5000", failed.Size, err)
	}
	if _, err := s.RetryBatches(ctx(t), r.ID, nil); err != nil {
		t.Fatalf("RetryBatches: %v", err)
	}
	if got := mustGetBatch(t, s, r.ID, 4); got.Size != 5000 {
		t.Errorf("retried batch: size %d, want 5000", got.Size)
	}
	page, err := s.ListBatches(ctx(t), r.ID, store.BatchFilter{States: []store.BatchState{store.BatchSucceeded}})
	if err != nil || len(page.Items) != 1 || page.Items[0].Size != 250 {
		t.Errorf("ListBatches succeeded: %+v, %v; want batch 2 of size 250", page.Items, err)
	}

	// A size out of range is refused and plans nothing.
	r2 := runningRun(t, s)
	for _, size := range []int{-1, store.MaxBatchSize + 1} {
		bad := ranges(0, 1)
		bad[0].Size = size
		_, err := s.AppendBatches(ctx(t), r2.ID, store.PlanStep{To: keyOf(1), Batches: bad})
		wantArgumentError(t, fmt.Sprintf("AppendBatches with size %d", size), err, "size")
	}
	if got := mustGetRun(t, s, r2.ID); got.BatchesTotal() != 0 || got.PlanCursor != "" {
		t.Errorf("refused steps planned %d batches, cursor %q", got.BatchesTotal(), got.PlanCursor)
	}
}
