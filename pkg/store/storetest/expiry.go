package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// A worker frozen mid-batch, the run cancelled, the worker killed: its
// batch stays running under a lease nobody extends. Once the lease expires
// the batch is cancelled and the run reaches cancelled; the frozen worker's
// late commit is refused.
func testCancellingRunExpiredLeases(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 3)
	// bs[0]: a lease that will expire (long enough to outlast the next
	// steps on a loaded machine); bs[1]: a live claim; bs[2]:
	// pending, cancelled by CancelRun.
	if _, err := s.ClaimBatch(ctx(t), r.ID, bs[0].Seq, store.Claim{Worker: "frozen", Token: "frozen", Lease: time.Second}); err != nil {
		t.Fatalf("ClaimBatch: %v", err)
	}
	mustClaim(t, s, bs[1], "live")
	got, err := s.CancelRun(ctx(t), r.ID)
	if err != nil || got.State != store.RunCancelling {
		t.Fatalf("CancelRun: %s, %v; want cancelling", got.State, err)
	}

	// Nothing has expired yet: nothing changes.
	got, err = s.CancelExpiredBatches(ctx(t), r.ID)
	if err != nil {
		t.Fatalf("CancelExpiredBatches before any lease expired: %v", err)
	}
	if got.State != store.RunCancelling || got.BatchesRunning != 2 {
		t.Fatalf("CancelExpiredBatches with live leases: run %s with %d running, want cancelling with 2", got.State, got.BatchesRunning)
	}

	time.Sleep(1100 * time.Millisecond)
	got, err = s.CancelExpiredBatches(ctx(t), r.ID)
	if err != nil {
		t.Fatalf("CancelExpiredBatches: %v", err)
	}
	if got.State != store.RunCancelling {
		t.Fatalf("run is %s while a live claim remains, want cancelling", got.State)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchCancelled: 2, store.BatchRunning: 1})
	b := mustGetBatch(t, s, r.ID, bs[0].Seq)
	if b.State != store.BatchCancelled || b.FinishedAt == nil || b.LeaseUntil != nil || b.Worker != "frozen" {
		t.Fatalf("expired batch: state %s finished %v lease %v worker %q; want cancelled, finished, no lease, worker kept",
			b.State, b.FinishedAt, b.LeaseUntil, b.Worker)
	}

	// The frozen worker wakes up: its commit and its failure are refused.
	_, err = s.CompleteBatch(ctx(t), r.ID, bs[0].Seq, "frozen", store.Result{RowsRead: 5, RowsWritten: 5})
	wantErr(t, "CompleteBatch by the expired attempt of a cancelled batch", err, store.ErrConflict)
	_, err = s.FailBatch(ctx(t), r.ID, bs[0].Seq, "frozen", store.Failure{Message: "late"})
	wantErr(t, "FailBatch by the expired attempt of a cancelled batch", err, store.ErrConflict)
	_, err = s.ExtendClaim(ctx(t), r.ID, bs[0].Seq, "frozen", time.Minute)
	wantErr(t, "ExtendClaim by the expired attempt of a cancelled batch", err, store.ErrStaleClaim)
	if run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchCancelled: 2, store.BatchRunning: 1}); run.RowsWritten != 0 {
		t.Fatalf("refused commit added %d rows", run.RowsWritten)
	}

	// The live attempt finishes; the run settles as cancelled.
	if _, err := s.CompleteBatch(ctx(t), r.ID, bs[1].Seq, "live", store.Result{RowsRead: 2, RowsWritten: 2}); err != nil {
		t.Fatalf("CompleteBatch of the live attempt: %v", err)
	}
	got, err = s.CancelExpiredBatches(ctx(t), r.ID)
	if err != nil {
		t.Fatalf("CancelExpiredBatches with nothing running: %v", err)
	}
	if got.State != store.RunCancelled || got.FinishedAt == nil {
		t.Fatalf("run %s finished %v, want cancelled", got.State, got.FinishedAt)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchCancelled: 2, store.BatchSucceeded: 1})

	// Every expired claim of a cancelling run at once: the run finishes in
	// the same step.
	r2 := runningRun(t, s)
	for _, b := range plan(t, s, r2.ID, 2) {
		if _, err := s.ClaimBatch(ctx(t), r2.ID, b.Seq, store.Claim{Worker: "dead", Token: "d", Lease: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CancelRun(ctx(t), r2.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	got, err = s.CancelExpiredBatches(ctx(t), r2.ID)
	if err != nil || got.State != store.RunCancelled || got.BatchesCancelled != 2 || got.BatchesRunning != 0 {
		t.Fatalf("CancelExpiredBatches: run %s %+v, %v; want cancelled with 2 cancelled batches", got.State, got.Counters, err)
	}
	assertCounters(t, s, r2.ID, map[store.BatchState]int64{store.BatchCancelled: 2})

	// Other states are left alone, expired leases or not.
	r3 := runningRun(t, s)
	b3 := plan(t, s, r3.ID, 1)[0]
	if _, err := s.ClaimBatch(ctx(t), r3.ID, b3.Seq, store.Claim{Worker: "w", Token: "x", Lease: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	for _, st := range []store.RunState{store.RunRunning, store.RunPaused} {
		if st == store.RunPaused {
			mustTransition(t, s, r3.ID, store.RunPaused)
		}
		got, err := s.CancelExpiredBatches(ctx(t), r3.ID)
		if err != nil || got.State != st {
			t.Fatalf("CancelExpiredBatches of a %s run: %s, %v", st, got.State, err)
		}
		assertCounters(t, s, r3.ID, map[store.BatchState]int64{store.BatchRunning: 1})
	}
	_, err = s.CancelExpiredBatches(ctx(t), 987654321)
	wantErr(t, "CancelExpiredBatches of an unknown run", err, store.ErrNotFound)
}

// A dead worker's claims are expired by worker id: its batches can be
// claimed again at once; other workers' claims are untouched.
func testExpireClaims(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, 4)
	claim := func(b store.Batch, worker, token string) {
		t.Helper()
		if _, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: worker, Token: token, Lease: time.Hour}); err != nil {
			t.Fatalf("ClaimBatch(%s): %v", b.ID(), err)
		}
	}
	claim(bs[0], "dead:1", "d0")
	claim(bs[1], "dead:1", "d1")
	claim(bs[2], "alive:2", "a2")
	// bs[3] stays pending.

	got, err := s.ExpireClaims(ctx(t), r.ID, "dead:1")
	if err != nil {
		t.Fatalf("ExpireClaims: %v", err)
	}
	var seqs []int64
	for _, b := range got {
		seqs = append(seqs, b.Seq)
		if b.State != store.BatchRunning || b.LeaseUntil == nil || b.LeaseUntil.After(time.Now().Add(time.Second)) {
			t.Errorf("expired batch %s: state %s lease %v, want running with a lease that has ended", b.ID(), b.State, b.LeaseUntil)
		}
	}
	if len(seqs) != 2 || seqs[0]+seqs[1] != bs[0].Seq+bs[1].Seq {
		t.Fatalf("ExpireClaims returned batches %v, want %d and %d", seqs, bs[0].Seq, bs[1].Seq)
	}
	// At once claimable by another worker; the other worker's claim holds.
	time.Sleep(5 * time.Millisecond)
	claim(bs[0], "new:3", "n0")
	_, err = s.ClaimBatch(ctx(t), r.ID, bs[2].Seq, store.Claim{Worker: "new:3", Token: "n2", Lease: time.Minute})
	wantErr(t, "ClaimBatch of a live worker's batch", err, store.ErrBatchClaimed)
	// The dead worker's attempt on the reclaimed batch is stale; on the
	// batch nobody reclaimed it may still finish.
	_, err = s.CompleteBatch(ctx(t), r.ID, bs[0].Seq, "d0", store.Result{RowsWritten: 1})
	wantErr(t, "CompleteBatch by the expired attempt", err, store.ErrStaleClaim)
	if _, err := s.CompleteBatch(ctx(t), r.ID, bs[1].Seq, "d1", store.Result{RowsWritten: 1}); err != nil {
		t.Fatalf("late CompleteBatch with no competitor: %v", err)
	}
	assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchRunning: 2, store.BatchSucceeded: 1, store.BatchPending: 1})

	// Nothing left to expire; the new claim of bs[0] is not the dead one's.
	if got, err := s.ExpireClaims(ctx(t), r.ID, "dead:1"); err != nil || len(got) != 0 {
		t.Fatalf("ExpireClaims again: %d batches, %v; want none", len(got), err)
	}
	if b := mustGetBatch(t, s, r.ID, bs[0].Seq); b.ClaimToken != "n0" || b.LeaseUntil == nil || time.Until(*b.LeaseUntil) < 50*time.Minute {
		t.Fatalf("new claim changed: token %q lease %v", b.ClaimToken, b.LeaseUntil)
	}

	// In a cancelling run, expired claims are then cancelled.
	claim(bs[3], "dead:1", "d3")
	if _, err := s.CancelRun(ctx(t), r.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ExpireClaims(ctx(t), r.ID, "dead:1"); err != nil || len(got) != 1 {
		t.Fatalf("ExpireClaims in a cancelling run: %d batches, %v; want 1", len(got), err)
	}
	time.Sleep(5 * time.Millisecond)
	if run, err := s.CancelExpiredBatches(ctx(t), r.ID); err != nil || run.BatchesCancelled != 1 {
		t.Fatalf("CancelExpiredBatches after ExpireClaims: %+v, %v; want 1 cancelled", run.Counters, err)
	}

	_, err = s.ExpireClaims(ctx(t), r.ID, "")
	wantArgumentError(t, "ExpireClaims without a worker", err, "worker")
	_, err = s.ExpireClaims(ctx(t), 987654321, "dead:1")
	wantErr(t, "ExpireClaims of an unknown run", err, store.ErrNotFound)
}

// A scheduled run can be moved to another time; a guarded transition
// refuses a run in another state than the one the caller expects.
func testRescheduleAndGuardedTransition(t *testing.T, s store.Store) {
	later := time.Date(2099, 1, 2, 3, 4, 5, 678901000, time.UTC)
	r := mustCreate(t, s, newRun("resched"))
	got, err := s.RescheduleRun(ctx(t), r.ID, later)
	if err != nil {
		t.Fatalf("RescheduleRun: %v", err)
	}
	if got.State != store.RunScheduled || got.StartAt == nil || !got.StartAt.Equal(later) {
		t.Fatalf("rescheduled run: state %s start_at %v, want scheduled at %v", got.State, got.StartAt, later)
	}
	if stored := mustGetRun(t, s, r.ID); stored.StartAt == nil || !stored.StartAt.Equal(later) {
		t.Fatalf("stored start_at %v, want %v", stored.StartAt, later)
	}

	// Resuming means paused → running; a scheduled run is refused.
	_, err = s.TransitionRun(ctx(t), r.ID, store.RunRunning, &store.TransitionOptions{From: store.RunPaused})
	wantTransitionError(t, "guarded TransitionRun of a scheduled run", err, string(store.RunScheduled), string(store.RunRunning))
	if stored := mustGetRun(t, s, r.ID); stored.State != store.RunScheduled {
		t.Fatalf("refused transition moved the run to %s", stored.State)
	}
	got, err = s.TransitionRun(ctx(t), r.ID, store.RunRunning, &store.TransitionOptions{From: store.RunScheduled})
	if err != nil || got.State != store.RunRunning {
		t.Fatalf("guarded start: %s, %v", got.State, err)
	}
	_, err = s.RescheduleRun(ctx(t), r.ID, later)
	wantTransitionError(t, "RescheduleRun of a running run", err, string(store.RunRunning), string(store.RunScheduled))
	mustTransition(t, s, r.ID, store.RunPaused)
	_, err = s.TransitionRun(ctx(t), r.ID, store.RunRunning, &store.TransitionOptions{From: store.RunScheduled})
	wantTransitionError(t, "guarded start of a paused run", err, string(store.RunPaused), string(store.RunRunning))
	if got, err := s.TransitionRun(ctx(t), r.ID, store.RunRunning, &store.TransitionOptions{From: store.RunPaused}); err != nil || got.State != store.RunRunning {
		t.Fatalf("guarded resume: %s, %v", got.State, err)
	}
	_, err = s.RescheduleRun(ctx(t), 987654321, later)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RescheduleRun of an unknown run: %v, want ErrNotFound", err)
	}
}
