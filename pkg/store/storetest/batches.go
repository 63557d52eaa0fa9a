package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func testAppendBatches(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	first, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: "", To: keyOf(3), Batches: ranges(0, 3)})
	if err != nil {
		t.Fatalf("AppendBatches: %v", err)
	}
	if len(first) != 3 {
		t.Fatalf("AppendBatches returned %d batches, want 3", len(first))
	}
	for i, b := range first {
		if b.RunID != r.ID || b.Seq != int64(i+1) || b.State != store.BatchPending {
			t.Errorf("batch %d: run %d seq %d state %s, want run %d seq %d pending", i, b.RunID, b.Seq, b.State, r.ID, i+1)
		}
		want := ranges(0, 3)[i]
		if b.Lo != want.Lo || b.Hi != want.Hi {
			t.Errorf("batch %d: range (%q, %q], want (%q, %q]", i, b.Lo, b.Hi, want.Lo, want.Hi)
		}
		if b.Attempts != 0 || b.Retries != 0 || b.ClaimToken != "" || b.LeaseUntil != nil || b.StartedAt != nil {
			t.Errorf("batch %d: fresh batch has attempt data %+v", i, b)
		}
		if !recent(b.CreatedAt) {
			t.Errorf("batch %d: created_at %v, want now", i, b.CreatedAt)
		}
		if got := mustGetBatch(t, s, r.ID, b.Seq); got.Lo != b.Lo || got.Hi != b.Hi || got.State != b.State || !got.CreatedAt.Equal(b.CreatedAt) {
			t.Errorf("GetBatch differs from AppendBatches: %+v vs %+v", got, b)
		}
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 3})
	if run.PlanCursor != keyOf(3) || run.PlanDone {
		t.Fatalf("after one step: cursor %q done %v, want %q not done", run.PlanCursor, run.PlanDone, keyOf(3))
	}

	// A planner working from a stale cursor loses and creates nothing.
	_, err = s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: "", To: keyOf(3), Batches: ranges(0, 3)})
	wantErr(t, "AppendBatches from a stale cursor", err, store.ErrConflict)
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 3})

	second, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: keyOf(3), To: keyOf(5), Done: true, Batches: ranges(3, 2)})
	if err != nil {
		t.Fatalf("AppendBatches second step: %v", err)
	}
	if len(second) != 2 || second[0].Seq != 4 || second[1].Seq != 5 {
		t.Fatalf("second step seqs %v, want 4 and 5", second)
	}
	run = assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 5})
	if run.PlanCursor != keyOf(5) || !run.PlanDone {
		t.Fatalf("after the last step: cursor %q done %v", run.PlanCursor, run.PlanDone)
	}
	_, err = s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: keyOf(5), To: keyOf(6), Batches: ranges(5, 1)})
	wantErr(t, "AppendBatches after planning is done", err, store.ErrConflict)
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 5})

	// An empty last step only marks planning done.
	r2 := runningRun(t, s)
	plan(t, s, r2.ID, 2)
	bs, err := s.AppendBatches(ctx(t), r2.ID, store.PlanStep{From: keyOf(2), To: keyOf(2), Done: true})
	if err != nil || len(bs) != 0 {
		t.Fatalf("empty final step: %v, %d batches", err, len(bs))
	}
	if run := mustGetRun(t, s, r2.ID); !run.PlanDone || run.BatchesTotal() != 2 {
		t.Fatalf("empty final step: done %v total %d", run.PlanDone, run.BatchesTotal())
	}
}

// A step planned with Enqueue creates its batches enqueued, as EnqueueBatch
// would have made them, ready to be claimed.
func testAppendBatchesEnqueued(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	plan(t, s, r.ID, 1) // one pending batch before
	bs, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: keyOf(1), To: keyOf(3), Batches: ranges(1, 2), Enqueue: true})
	if err != nil {
		t.Fatalf("AppendBatches with Enqueue: %v", err)
	}
	if len(bs) != 2 {
		t.Fatalf("AppendBatches returned %d batches, want 2", len(bs))
	}
	for i, b := range bs {
		if b.Seq != int64(i+2) || b.State != store.BatchEnqueued || b.EnqueuedAt == nil || !recent(*b.EnqueuedAt) {
			t.Errorf("batch %d: seq %d state %s enqueued_at %v, want seq %d enqueued now", i, b.Seq, b.State, b.EnqueuedAt, i+2)
		}
		got := mustGetBatch(t, s, r.ID, b.Seq)
		if got.State != store.BatchEnqueued || got.EnqueuedAt == nil || !got.EnqueuedAt.Equal(*b.EnqueuedAt) {
			t.Errorf("GetBatch differs from AppendBatches: %+v vs %+v", got, b)
		}
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 1, store.BatchEnqueued: 2})
	page, err := s.ListBatches(ctx(t), r.ID, store.BatchFilter{States: []store.BatchState{store.BatchEnqueued}})
	if err != nil || len(page.Items) != 2 || page.Items[0].Seq != 2 {
		t.Fatalf("enqueued batches listed: %+v, %v; want seqs 2 and 3", page.Items, err)
	}
	// An enqueued batch is not enqueued again, and is claimed like any.
	_, err = s.EnqueueBatch(ctx(t), r.ID, 2)
	wantErr(t, "EnqueueBatch of a batch planned enqueued", err, store.ErrIllegalTransition)
	if _, err := s.ClaimBatch(ctx(t), r.ID, 3, store.Claim{Worker: "w", Token: "t3", Lease: time.Minute}); err != nil {
		t.Fatalf("ClaimBatch of a batch planned enqueued: %v", err)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 1, store.BatchEnqueued: 1, store.BatchRunning: 1})
}

func testAppendBatchesNeedsActiveRun(t *testing.T, s store.Store) {
	for _, st := range store.RunStates {
		r := reachRunState(t, s, st)
		_, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{To: keyOf(1), Batches: ranges(0, 1)})
		active := st == store.RunRunning || st == store.RunPaused
		if active && err != nil {
			t.Errorf("AppendBatches on a %s run: %v", st, err)
		}
		if !active {
			wantErr(t, fmt.Sprintf("AppendBatches on a %s run", st), err, store.ErrConflict)
			if got := mustGetRun(t, s, r.ID); got.BatchesTotal() != 0 || got.PlanCursor != "" {
				t.Errorf("refused AppendBatches on a %s run changed it: %+v", st, got.Counters)
			}
		}
	}
}

// batchIn creates a running run with one batch and brings the batch to st.
// The batch's claim, if any, has token "t1".
func batchIn(t *testing.T, s store.Store, st store.BatchState) store.Batch {
	t.Helper()
	r := runningRun(t, s)
	b := plan(t, s, r.ID, 1)[0]
	switch st {
	case store.BatchPending:
		return b
	case store.BatchEnqueued:
		got, err := s.EnqueueBatch(ctx(t), r.ID, b.Seq)
		if err != nil {
			t.Fatalf("EnqueueBatch: %v", err)
		}
		return got
	case store.BatchCancelled:
		if _, err := s.CancelRun(ctx(t), r.ID); err != nil {
			t.Fatalf("CancelRun: %v", err)
		}
		return mustGetBatch(t, s, r.ID, b.Seq)
	}
	b = mustClaim(t, s, b, "t1")
	switch st {
	case store.BatchSucceeded:
		got, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "t1", store.Result{RowsRead: 10, RowsWritten: 9, RowsSkipped: 1})
		if err != nil {
			t.Fatalf("CompleteBatch: %v", err)
		}
		return got
	case store.BatchFailed:
		got, err := s.FailBatch(ctx(t), r.ID, b.Seq, "t1", store.Failure{Message: "boom", Stack: "main.go:1", Final: true})
		if err != nil {
			t.Fatalf("FailBatch: %v", err)
		}
		return got
	}
	return b
}

// TestBatchTransitions drives every batch operation from every batch state
// and checks the outcome against the state machine.
func testBatchTransitions(t *testing.T, s store.Store) {
	type op struct {
		name string
		to   store.BatchState // state on success
		do   func(b store.Batch) (store.Batch, error)
	}
	ops := []op{
		{"enqueue", store.BatchEnqueued, func(b store.Batch) (store.Batch, error) {
			return s.EnqueueBatch(ctx(t), b.RunID, b.Seq)
		}},
		{"claim", store.BatchRunning, func(b store.Batch) (store.Batch, error) {
			return s.ClaimBatch(ctx(t), b.RunID, b.Seq, store.Claim{Worker: "w2", Token: "t2", Lease: time.Minute})
		}},
		{"complete", store.BatchSucceeded, func(b store.Batch) (store.Batch, error) {
			return s.CompleteBatch(ctx(t), b.RunID, b.Seq, "t1", store.Result{RowsRead: 1, RowsWritten: 1})
		}},
		{"fail-retryable", store.BatchEnqueued, func(b store.Batch) (store.Batch, error) {
			return s.FailBatch(ctx(t), b.RunID, b.Seq, "t1", store.Failure{Message: "again"})
		}},
		{"fail-final", store.BatchFailed, func(b store.Batch) (store.Batch, error) {
			return s.FailBatch(ctx(t), b.RunID, b.Seq, "t1", store.Failure{Message: "final", Final: true})
		}},
		{"retry", store.BatchPending, func(b store.Batch) (store.Batch, error) {
			seq := b.Seq
			n, err := s.RetryBatches(ctx(t), b.RunID, &seq)
			if err == nil && n != 1 {
				return b, fmt.Errorf("RetryBatches moved %d batches, want 1", n)
			}
			got, gerr := s.GetBatch(ctx(t), b.RunID, b.Seq)
			if gerr != nil {
				return got, gerr
			}
			return got, err
		}},
	}
	// want[from][op] is the expected error; nil means the op succeeds.
	stale, finished, claimed := store.ErrStaleClaim, store.ErrBatchFinished, store.ErrBatchClaimed
	illegal := store.ErrIllegalTransition
	want := map[store.BatchState]map[string]error{
		store.BatchPending:   {"enqueue": nil, "claim": nil, "complete": stale, "fail-retryable": stale, "fail-final": stale, "retry": illegal},
		store.BatchEnqueued:  {"enqueue": illegal, "claim": nil, "complete": stale, "fail-retryable": stale, "fail-final": stale, "retry": illegal},
		store.BatchRunning:   {"enqueue": illegal, "claim": claimed, "complete": nil, "fail-retryable": nil, "fail-final": nil, "retry": illegal},
		store.BatchSucceeded: {"enqueue": illegal, "claim": finished, "complete": finished, "fail-retryable": finished, "fail-final": finished, "retry": illegal},
		// The token t1 of the failed attempt is no longer current.
		store.BatchFailed: {"enqueue": illegal, "claim": nil, "complete": stale, "fail-retryable": stale, "fail-final": stale, "retry": nil},
		// Retrying a batch of a cancelled run is refused for the run.
		store.BatchCancelled: {"enqueue": illegal, "claim": finished, "complete": finished, "fail-retryable": finished, "fail-final": finished, "retry": illegal},
	}
	for _, from := range store.BatchStates {
		for _, o := range ops {
			label := fmt.Sprintf("%s from %s", o.name, from)
			b := batchIn(t, s, from)
			if b.State != from {
				t.Fatalf("%s: setup reached %s", label, b.State)
			}
			before := mustGetRun(t, s, b.RunID)
			got, err := o.do(b)
			wantE := want[from][o.name]
			if wantE == nil {
				if err != nil {
					t.Errorf("%s: %v", label, err)
					continue
				}
				if got.State != o.to {
					t.Errorf("%s: returned state %s, want %s", label, got.State, o.to)
				}
				if stored := mustGetBatch(t, s, b.RunID, b.Seq); stored.State != o.to {
					t.Errorf("%s: stored state %s, want %s", label, stored.State, o.to)
				}
				if !from.CanTransition(o.to) {
					t.Errorf("%s: succeeded although the state machine forbids %s → %s", label, from, o.to)
				}
				assertCounters(t, s, b.RunID, map[store.BatchState]int64{o.to: 1})
				continue
			}
			if err == nil {
				t.Errorf("%s: succeeded (state %s), want %v", label, got.State, wantE)
				continue
			}
			if !errors.Is(err, wantE) {
				t.Errorf("%s: error %v, want %v", label, err, wantE)
				continue
			}
			if errors.Is(wantE, store.ErrIllegalTransition) {
				var te *store.TransitionError
				if !errors.As(err, &te) {
					t.Errorf("%s: %v is not a *store.TransitionError", label, err)
				}
			}
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: error %v does not match ErrConflict", label, err)
			}
			if stored := mustGetBatch(t, s, b.RunID, b.Seq); stored.State != from || stored.Attempts != b.Attempts {
				t.Errorf("%s refused but the batch is now %s with %d attempts", label, stored.State, stored.Attempts)
			}
			after := assertCounters(t, s, b.RunID, map[store.BatchState]int64{from: 1})
			if after.State != before.State {
				t.Errorf("%s refused but the run went from %s to %s", label, before.State, after.State)
			}
		}
	}
}

func testClaimNeedsRunningRun(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 2)
	mustTransition(t, s, r.ID, store.RunPaused)
	_, err := s.ClaimBatch(ctx(t), r.ID, bs[0].Seq, store.Claim{Token: "x", Lease: time.Minute})
	wantErr(t, "ClaimBatch in a paused run", err, store.ErrRunNotRunning, store.ErrConflict)
	if b := mustGetBatch(t, s, r.ID, bs[0].Seq); b.State != store.BatchPending || b.Attempts != 0 {
		t.Fatalf("refused claim changed the batch: %s, %d attempts", b.State, b.Attempts)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 2})

	// In-flight work of a paused run still completes.
	mustTransition(t, s, r.ID, store.RunRunning)
	b := mustClaim(t, s, bs[1], "t")
	mustTransition(t, s, r.ID, store.RunPaused)
	if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "t", store.Result{RowsRead: 3, RowsWritten: 3}); err != nil {
		t.Fatalf("CompleteBatch in a paused run: %v", err)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 1, store.BatchSucceeded: 1})

	// A finished batch reports finished whatever the run's state, so its
	// task is acknowledged rather than retried.
	_, err = s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: "y", Lease: time.Minute})
	wantErr(t, "ClaimBatch of a succeeded batch in a paused run", err, store.ErrBatchFinished)
}

func testClaimRejectsBadInput(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	b := plan(t, s, r.ID, 1)[0]
	_, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: "", Lease: time.Minute})
	wantArgumentError(t, "ClaimBatch without token", err, "token")
	_, err = s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: "x", Lease: 0})
	wantArgumentError(t, "ClaimBatch without lease", err, "lease")
	b = mustClaim(t, s, b, "ok")
	_, err = s.CompleteBatch(ctx(t), r.ID, b.Seq, "ok", store.Result{RowsWritten: -1})
	wantErr(t, "CompleteBatch with negative rows", err, store.ErrInvalidArgument)
	if got := mustGetBatch(t, s, r.ID, b.Seq); got.State != store.BatchRunning {
		t.Fatalf("refused completion changed the batch to %s", got.State)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchRunning: 1})
}

func testCompleteRecordsResult(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 2)
	b := mustClaim(t, s, bs[0], "tok")
	if b.Attempts != 1 || b.Worker != "w-tok" || b.ClaimToken != "tok" || b.LeaseUntil == nil || b.StartedAt == nil {
		t.Fatalf("claimed batch: attempts %d worker %q token %q lease %v started %v", b.Attempts, b.Worker, b.ClaimToken, b.LeaseUntil, b.StartedAt)
	}
	if d := time.Until(*b.LeaseUntil); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("lease ends in %s, want about a minute", d)
	}
	got, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "tok", store.Result{RowsRead: 100, RowsWritten: 90, RowsSkipped: 10, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatalf("CompleteBatch: %v", err)
	}
	stored := mustGetBatch(t, s, r.ID, b.Seq)
	for _, g := range []store.Batch{got, stored} {
		if g.State != store.BatchSucceeded || g.RowsRead != 100 || g.RowsWritten != 90 || g.RowsSkipped != 10 || g.Duration != 1500*time.Millisecond {
			t.Errorf("completed batch: %s rows %d/%d/%d duration %s", g.State, g.RowsRead, g.RowsWritten, g.RowsSkipped, g.Duration)
		}
		if g.FinishedAt == nil || !recent(*g.FinishedAt) || g.ClaimToken != "" || g.LeaseUntil != nil || g.Worker != "w-tok" {
			t.Errorf("completed batch: finished %v token %q lease %v worker %q", g.FinishedAt, g.ClaimToken, g.LeaseUntil, g.Worker)
		}
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 1, store.BatchSucceeded: 1})
	if run.RowsRead != 100 || run.RowsWritten != 90 || run.RowsSkipped != 10 {
		t.Fatalf("run rows %d/%d/%d, want 100/90/10", run.RowsRead, run.RowsWritten, run.RowsSkipped)
	}
	// Completing twice never counts twice.
	_, err = s.CompleteBatch(ctx(t), r.ID, b.Seq, "tok", store.Result{RowsRead: 100, RowsWritten: 90, RowsSkipped: 10})
	wantErr(t, "second CompleteBatch", err, store.ErrBatchFinished)
	if run := mustGetRun(t, s, r.ID); run.RowsWritten != 90 || run.BatchesSucceeded != 1 {
		t.Fatalf("second completion counted: rows written %d, succeeded %d", run.RowsWritten, run.BatchesSucceeded)
	}
}

func testFailAndRetryAttempts(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	b := plan(t, s, r.ID, 1)[0]
	mustClaim(t, s, b, "a1")
	got, err := s.FailBatch(ctx(t), r.ID, b.Seq, "a1", store.Failure{Message: "deadlock", Stack: "goroutine 1", Duration: time.Second})
	if err != nil {
		t.Fatalf("FailBatch: %v", err)
	}
	if got.State != store.BatchEnqueued || got.Error != "deadlock" || got.ErrorStack != "goroutine 1" || got.ClaimToken != "" || got.LeaseUntil != nil || got.FinishedAt != nil {
		t.Fatalf("retryable failure: %+v", got)
	}
	if got.Duration != time.Second {
		t.Errorf("failed attempt duration %s, want 1s", got.Duration)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchEnqueued: 1})
	// The old token can do nothing more.
	_, err = s.FailBatch(ctx(t), r.ID, b.Seq, "a1", store.Failure{Message: "again"})
	wantErr(t, "FailBatch with a released token", err, store.ErrStaleClaim)

	second := mustClaim(t, s, b, "a2")
	if second.Attempts != 2 || second.Error != "deadlock" {
		t.Fatalf("second attempt: attempts %d error %q, want 2 and the previous error kept", second.Attempts, second.Error)
	}
	final, err := s.FailBatch(ctx(t), r.ID, b.Seq, "a2", store.Failure{Message: "still broken", Stack: "trace", Final: true})
	if err != nil {
		t.Fatalf("final FailBatch: %v", err)
	}
	if final.State != store.BatchFailed || final.Error != "still broken" || final.ErrorStack != "trace" || final.FinishedAt == nil {
		t.Fatalf("final failure: %+v", final)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchFailed: 1})
	if run.RowsRead != 0 || run.RowsWritten != 0 {
		t.Fatalf("a failed batch added rows to the run: %+v", run.Counters)
	}

	// Fixed: a third attempt succeeds and clears the error.
	third := mustClaim(t, s, b, "a3")
	if third.Attempts != 3 {
		t.Fatalf("third attempt: attempts %d", third.Attempts)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchRunning: 1})
	done, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "a3", store.Result{RowsRead: 5, RowsWritten: 5})
	if err != nil {
		t.Fatalf("CompleteBatch: %v", err)
	}
	if done.Error != "" || done.ErrorStack != "" {
		t.Fatalf("succeeded batch keeps error %q / %q", done.Error, done.ErrorStack)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchSucceeded: 1})
}

func testExpiredLeaseIsReclaimed(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	b := plan(t, s, r.ID, 1)[0]
	// A lease long enough that the next claim lands inside it even on a
	// loaded machine.
	if _, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: "dead", Token: "old", Lease: time.Second}); err != nil {
		t.Fatalf("ClaimBatch: %v", err)
	}
	_, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: "eager", Token: "early", Lease: time.Minute})
	wantErr(t, "ClaimBatch while the lease is live", err, store.ErrBatchClaimed)
	time.Sleep(1200 * time.Millisecond)
	got, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: "new", Token: "new", Lease: time.Minute})
	if err != nil {
		t.Fatalf("ClaimBatch after the lease expired: %v", err)
	}
	if got.Attempts != 2 || got.Worker != "new" || got.ClaimToken != "new" {
		t.Fatalf("reclaimed batch: attempts %d worker %q token %q", got.Attempts, got.Worker, got.ClaimToken)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchRunning: 1})
	// The dead attempt wakes up: it can neither complete nor fail the batch.
	_, err = s.CompleteBatch(ctx(t), r.ID, b.Seq, "old", store.Result{RowsWritten: 1})
	wantErr(t, "CompleteBatch by the expired attempt", err, store.ErrStaleClaim)
	_, err = s.FailBatch(ctx(t), r.ID, b.Seq, "old", store.Failure{Message: "x", Final: true})
	wantErr(t, "FailBatch by the expired attempt", err, store.ErrStaleClaim)
	if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "new", store.Result{RowsWritten: 7}); err != nil {
		t.Fatalf("CompleteBatch by the current attempt: %v", err)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchSucceeded: 1})
	if run.RowsWritten != 7 {
		t.Fatalf("rows written %d, want 7", run.RowsWritten)
	}

	// An attempt whose lease expired but that nobody replaced may still finish.
	b2 := plan(t, s, r.ID, 1)[0]
	if _, err := s.ClaimBatch(ctx(t), r.ID, b2.Seq, store.Claim{Token: "slow", Lease: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := s.CompleteBatch(ctx(t), r.ID, b2.Seq, "slow", store.Result{RowsWritten: 1}); err != nil {
		t.Fatalf("late CompleteBatch with no competitor: %v", err)
	}
}

func testExtendClaim(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	b := plan(t, s, r.ID, 1)[0]
	if _, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: "long", Lease: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ext, err := s.ExtendClaim(ctx(t), r.ID, b.Seq, "long", time.Minute)
	if err != nil {
		t.Fatalf("ExtendClaim: %v", err)
	}
	if ext.LeaseUntil == nil || time.Until(*ext.LeaseUntil) < 50*time.Second {
		t.Fatalf("extended lease ends %v, want in about a minute", ext.LeaseUntil)
	}
	time.Sleep(200 * time.Millisecond)
	_, err = s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: "thief", Lease: time.Minute})
	wantErr(t, "ClaimBatch after the lease was extended", err, store.ErrBatchClaimed)
	_, err = s.ExtendClaim(ctx(t), r.ID, b.Seq, "thief", time.Minute)
	wantErr(t, "ExtendClaim with a foreign token", err, store.ErrStaleClaim)
	_, err = s.ExtendClaim(ctx(t), r.ID, b.Seq, "long", 0)
	wantErr(t, "ExtendClaim with zero lease", err, store.ErrInvalidArgument)
	if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, "long", store.Result{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ExtendClaim(ctx(t), r.ID, b.Seq, "long", time.Minute)
	wantErr(t, "ExtendClaim of a succeeded batch", err, store.ErrConflict)
}

func testCancelRun(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 5)
	// 1 pending, 2 enqueued, 1 running, 1 succeeded.
	for _, b := range bs[1:5] {
		if _, err := s.EnqueueBatch(ctx(t), r.ID, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	mustClaim(t, s, bs[3], "run")
	mustClaim(t, s, bs[4], "done")
	if _, err := s.CompleteBatch(ctx(t), r.ID, bs[4].Seq, "done", store.Result{RowsWritten: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CancelRun(ctx(t), r.ID)
	if err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	if got.State != store.RunCancelling {
		t.Fatalf("CancelRun with a running batch: state %s, want cancelling", got.State)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchCancelled: 3, store.BatchRunning: 1, store.BatchSucceeded: 1})
	for _, seq := range []int64{1, 2, 3} {
		if b := mustGetBatch(t, s, r.ID, seq); b.State != store.BatchCancelled {
			t.Errorf("batch %d is %s, want cancelled", seq, b.State)
		}
	}
	// A cancelled batch's task, delivered later, is acknowledged.
	_, err = s.ClaimBatch(ctx(t), r.ID, 2, store.Claim{Token: "late", Lease: time.Minute})
	wantErr(t, "ClaimBatch of a cancelled batch", err, store.ErrBatchFinished)
	// No new batch is planned for a cancelling run.
	_, err = s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: keyOf(5), To: keyOf(6), Batches: ranges(5, 1)})
	wantErr(t, "AppendBatches on a cancelling run", err, store.ErrConflict)
	_, err = s.CancelRun(ctx(t), r.ID)
	var twice *store.TransitionError
	if !errors.As(err, &twice) || twice.From != string(store.RunCancelling) {
		t.Fatalf("CancelRun twice: %v, want a TransitionError from cancelling", err)
	}
	// The in-flight batch finishes and counts.
	if _, err := s.CompleteBatch(ctx(t), r.ID, bs[3].Seq, "run", store.Result{RowsWritten: 3}); err != nil {
		t.Fatalf("CompleteBatch in a cancelling run: %v", err)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchCancelled: 3, store.BatchSucceeded: 2})
	if run.RowsWritten != 7 {
		t.Fatalf("rows written %d, want 7", run.RowsWritten)
	}
	final := mustTransition(t, s, r.ID, store.RunCancelled)
	if final.FinishedAt == nil {
		t.Fatalf("cancelled run has no finished_at")
	}
	for _, st := range []store.RunState{store.RunSucceeded, store.RunFailed, store.RunCancelled} {
		rr := reachRunState(t, s, st)
		_, err := s.CancelRun(ctx(t), rr.ID)
		var te *store.TransitionError
		if !errors.As(err, &te) || te.From != string(st) {
			t.Errorf("CancelRun of a %s run: %v, want a TransitionError from %s", st, err, st)
		}
	}
}

func testCancelRunWithoutRunningBatches(t *testing.T, s store.Store) {
	for _, st := range []store.RunState{store.RunScheduled, store.RunRunning, store.RunPaused} {
		r := reachRunState(t, s, st)
		if st != store.RunScheduled {
			plan(t, s, r.ID, 3)
		}
		got, err := s.CancelRun(ctx(t), r.ID)
		if err != nil {
			t.Fatalf("CancelRun of a %s run: %v", st, err)
		}
		if got.State != store.RunCancelled || got.FinishedAt == nil {
			t.Errorf("CancelRun of a %s run with nothing running: state %s finished %v, want cancelled", st, got.State, got.FinishedAt)
		}
		want := map[store.BatchState]int64{}
		if st != store.RunScheduled {
			want[store.BatchCancelled] = 3
		}
		assertCounters(t, s, r.ID, want)
	}
}

func testRetryBatches(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 4)
	for i, b := range bs {
		tok := fmt.Sprintf("t%d", i)
		mustClaim(t, s, b, tok)
		if i == 0 {
			if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, tok, store.Result{RowsWritten: 10}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := s.FailBatch(ctx(t), r.ID, b.Seq, tok, store.Failure{Message: "bad row", Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TransitionRun(ctx(t), r.ID, store.RunFailed, &store.TransitionOptions{Error: "3 batches failed"}); err != nil {
		t.Fatal(err)
	}
	n, err := s.RetryBatches(ctx(t), r.ID, nil)
	if err != nil {
		t.Fatalf("RetryBatches: %v", err)
	}
	if n != 3 {
		t.Fatalf("RetryBatches moved %d batches, want 3", n)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchSucceeded: 1, store.BatchPending: 3})
	if run.State != store.RunRunning || run.FinishedAt != nil || run.Error != "" {
		t.Fatalf("retried run: state %s finished %v error %q, want running", run.State, run.FinishedAt, run.Error)
	}
	for _, b := range bs[1:] {
		got := mustGetBatch(t, s, r.ID, b.Seq)
		if got.State != store.BatchPending || got.Retries != 1 || got.FinishedAt != nil {
			t.Errorf("retried batch %d: state %s retries %d finished %v", b.Seq, got.State, got.Retries, got.FinishedAt)
		}
	}
	if got := mustGetBatch(t, s, r.ID, bs[0].Seq); got.Retries != 0 || got.State != store.BatchSucceeded {
		t.Errorf("succeeded batch touched by retry: %+v", got)
	}
	// Nothing left to retry.
	n, err = s.RetryBatches(ctx(t), r.ID, nil)
	if err != nil || n != 0 {
		t.Fatalf("second RetryBatches: %d, %v; want 0, nil", n, err)
	}
	// A succeeded or cancelled run cannot be retried.
	for _, st := range []store.RunState{store.RunSucceeded, store.RunCancelled} {
		rr := reachRunState(t, s, st)
		_, err := s.RetryBatches(ctx(t), rr.ID, nil)
		wantErr(t, "RetryBatches of a "+string(st)+" run", err, store.ErrIllegalTransition)
	}
}

func testRetryOneBatch(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 3)
	for i, b := range bs[:2] {
		tok := fmt.Sprintf("t%d", i)
		mustClaim(t, s, b, tok)
		if _, err := s.FailBatch(ctx(t), r.ID, b.Seq, tok, store.Failure{Message: "x", Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	seq := bs[1].Seq
	n, err := s.RetryBatches(ctx(t), r.ID, &seq)
	if err != nil || n != 1 {
		t.Fatalf("RetryBatches(one): %d, %v", n, err)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchFailed: 1, store.BatchPending: 2})
	if got := mustGetBatch(t, s, r.ID, bs[0].Seq); got.State != store.BatchFailed {
		t.Fatalf("other failed batch is %s, want still failed", got.State)
	}
	seq = bs[2].Seq
	_, err = s.RetryBatches(ctx(t), r.ID, &seq)
	wantTransitionError(t, "RetryBatches of a pending batch", err, string(store.BatchPending), string(store.BatchPending))
	missing := int64(999)
	_, err = s.RetryBatches(ctx(t), r.ID, &missing)
	wantErr(t, "RetryBatches of an unknown batch", err, store.ErrNotFound)
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchFailed: 1, store.BatchPending: 2})
}

func testBatchNotFound(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	plan(t, s, r.ID, 2)
	for _, c := range []struct{ run, seq int64 }{{r.ID, 3}, {r.ID, 0}, {r.ID + 100, 1}} {
		label := fmt.Sprintf("batch %d/%d", c.run, c.seq)
		_, err := s.GetBatch(ctx(t), c.run, c.seq)
		wantErr(t, "GetBatch "+label, err, store.ErrNotFound)
		_, err = s.EnqueueBatch(ctx(t), c.run, c.seq)
		wantErr(t, "EnqueueBatch "+label, err, store.ErrNotFound)
		_, err = s.ClaimBatch(ctx(t), c.run, c.seq, store.Claim{Token: "x", Lease: time.Minute})
		wantErr(t, "ClaimBatch "+label, err, store.ErrNotFound)
		_, err = s.ExtendClaim(ctx(t), c.run, c.seq, "x", time.Minute)
		wantErr(t, "ExtendClaim "+label, err, store.ErrNotFound)
		_, err = s.CompleteBatch(ctx(t), c.run, c.seq, "x", store.Result{})
		wantErr(t, "CompleteBatch "+label, err, store.ErrNotFound)
		_, err = s.FailBatch(ctx(t), c.run, c.seq, "x", store.Failure{Message: "m"})
		wantErr(t, "FailBatch "+label, err, store.ErrNotFound)
	}
}

func testListBatchesFilters(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 10)
	other := runningRun(t, s)
	plan(t, s, other.ID, 4)
	// seq 2,4,6,8,10 enqueued; 3 and 9 running.
	for _, b := range bs {
		if b.Seq%2 == 0 {
			if _, err := s.EnqueueBatch(ctx(t), r.ID, b.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustClaim(t, s, bs[2], "a")
	mustClaim(t, s, bs[8], "b")
	seqs := func(f store.BatchFilter) []int64 {
		var out []int64
		for _, b := range allBatches(t, s, r.ID, f) {
			if b.RunID != r.ID {
				t.Fatalf("ListBatches(%d) returned batch of run %d", r.ID, b.RunID)
			}
			out = append(out, b.Seq)
		}
		return out
	}
	tests := []struct {
		name string
		f    store.BatchFilter
		want []int64
	}{
		{"all", store.BatchFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"all by 3", store.BatchFilter{Limit: 3}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"enqueued", store.BatchFilter{States: []store.BatchState{store.BatchEnqueued}, Limit: 2}, []int64{2, 4, 6, 8, 10}},
		{"pending", store.BatchFilter{States: []store.BatchState{store.BatchPending}}, []int64{1, 5, 7}},
		{"pending or running", store.BatchFilter{States: []store.BatchState{store.BatchRunning, store.BatchPending}, Limit: 2}, []int64{1, 3, 5, 7, 9}},
		{"failed", store.BatchFilter{States: []store.BatchState{store.BatchFailed}}, nil},
	}
	for _, tt := range tests {
		got := seqs(tt.f)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: seqs %v, want %v", tt.name, got, tt.want)
		}
	}
}

func testPaginationOver10kBatches(t *testing.T, s store.Store) {
	const n = 10_000
	r := runningRun(t, s)
	plan(t, s, r.ID, n)
	// Every 97th batch enqueued, so a filtered listing has to skip over
	// most of the run.
	var enqueued []int64
	for seq := int64(97); seq <= n; seq += 97 {
		if _, err := s.EnqueueBatch(ctx(t), r.ID, seq); err != nil {
			t.Fatalf("EnqueueBatch(%d): %v", seq, err)
		}
		enqueued = append(enqueued, seq)
	}
	for _, limit := range []int{1000, 333} {
		f := store.BatchFilter{Limit: limit}
		var next int64 = 1
		pages := 0
		for {
			p, err := s.ListBatches(ctx(t), r.ID, f)
			if err != nil {
				t.Fatalf("ListBatches: %v", err)
			}
			pages++
			for _, b := range p.Items {
				if b.Seq != next {
					t.Fatalf("limit %d page %d: seq %d, want %d", limit, pages, b.Seq, next)
				}
				if b.Hi != keyOf(int(b.Seq)) {
					t.Fatalf("batch %d: hi %q, want %q", b.Seq, b.Hi, keyOf(int(b.Seq)))
				}
				next++
			}
			if p.NextCursor == "" {
				break
			}
			if len(p.Items) != limit {
				t.Fatalf("limit %d: non-final page with %d items", limit, len(p.Items))
			}
			f.Cursor = p.NextCursor
		}
		if next != n+1 {
			t.Fatalf("limit %d: listed %d batches, want %d", limit, next-1, n)
		}
		if pages > n/limit+2 {
			t.Fatalf("limit %d: %d pages", limit, pages)
		}
	}
	got := allBatches(t, s, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchEnqueued}, Limit: 10})
	if len(got) != len(enqueued) {
		t.Fatalf("enqueued listing has %d batches, want %d", len(got), len(enqueued))
	}
	for i, b := range got {
		if b.Seq != enqueued[i] || b.State != store.BatchEnqueued {
			t.Fatalf("enqueued listing [%d]: seq %d state %s, want %d", i, b.Seq, b.State, enqueued[i])
		}
	}
	run := mustGetRun(t, s, r.ID)
	if run.BatchesTotal() != n || run.BatchesEnqueued != int64(len(enqueued)) || run.BatchesPending != int64(n-len(enqueued)) {
		t.Fatalf("counters %+v, want %d batches with %d enqueued", run.Counters, n, len(enqueued))
	}
}
