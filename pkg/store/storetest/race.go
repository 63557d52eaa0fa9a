package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

const racers = 50

// race starts n goroutines running fn and waits for them.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// sumSeqs is 1+2+…+n, the rows written when batch seq writes seq rows.
func sumSeqs(n int) int64 { return int64(n) * int64(n+1) / 2 }

// testRaceClaimComplete: 50 workers race to claim and complete every batch of
// a run. Each batch must be completed exactly once and counted once.
func testRaceClaimComplete(t *testing.T, s store.Store) {
	const n = 100
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, n)
	var completions, claims atomic.Int64
	errc := make(chan error, racers)
	race(racers, func(w int) {
		order := rand.Perm(n)
		for _, i := range order {
			b := bs[i]
			tok := fmt.Sprintf("w%d-b%d", w, b.Seq)
			_, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: fmt.Sprint(w), Token: tok, Lease: time.Minute})
			if errors.Is(err, store.ErrBatchClaimed) || errors.Is(err, store.ErrBatchFinished) {
				continue
			}
			if err != nil {
				errc <- fmt.Errorf("claim %s: %w", b.ID(), err)
				return
			}
			claims.Add(1)
			if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, tok, store.Result{RowsRead: b.Seq, RowsWritten: b.Seq, RowsSkipped: 1}); err != nil {
				errc <- fmt.Errorf("complete %s after a successful claim: %w", b.ID(), err)
				return
			}
			completions.Add(1)
		}
	})
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if claims.Load() != n || completions.Load() != n {
		t.Fatalf("%d claims and %d completions succeeded, want exactly %d each", claims.Load(), completions.Load(), n)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchSucceeded: n})
	if run.RowsWritten != sumSeqs(n) || run.RowsRead != sumSeqs(n) || run.RowsSkipped != n {
		t.Fatalf("run rows read/written/skipped %d/%d/%d, want %d/%d/%d", run.RowsRead, run.RowsWritten, run.RowsSkipped, sumSeqs(n), sumSeqs(n), n)
	}
	for _, b := range allBatches(t, s, r.ID, store.BatchFilter{Limit: n}) {
		if b.Attempts != 1 {
			t.Errorf("batch %s was claimed %d times, want once", b.ID(), b.Attempts)
		}
	}
}

// testRaceClaimCompleteExpiringLeases: leases so short that attempts are
// constantly overtaken by others. Stale attempts must never count.
func testRaceClaimCompleteExpiringLeases(t *testing.T, s store.Store) {
	const n = 60
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, n)
	var done sync.Map
	var completions, remaining atomic.Int64
	remaining.Store(n)
	errc := make(chan error, racers)
	deadline := time.Now().Add(2 * time.Minute)
	race(racers, func(w int) {
		for attempt := 0; remaining.Load() > 0; attempt++ {
			if time.Now().After(deadline) {
				errc <- fmt.Errorf("worker %d: batches never finished", w)
				return
			}
			b := bs[rand.IntN(n)]
			if _, ok := done.Load(b.Seq); ok {
				continue
			}
			tok := fmt.Sprintf("w%d-a%d", w, attempt)
			_, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Worker: fmt.Sprint(w), Token: tok, Lease: 40 * time.Millisecond})
			if errors.Is(err, store.ErrBatchClaimed) {
				continue
			}
			if errors.Is(err, store.ErrBatchFinished) {
				done.Store(b.Seq, true)
				continue
			}
			if err != nil {
				errc <- fmt.Errorf("claim %s: %w", b.ID(), err)
				return
			}
			// Sometimes longer than the lease, so attempts are overtaken.
			time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
			_, err = s.CompleteBatch(ctx(t), r.ID, b.Seq, tok, store.Result{RowsWritten: b.Seq})
			switch {
			case err == nil:
				// Only one completion per batch can succeed; should a
				// store allow two, the final count below catches it.
				completions.Add(1)
				remaining.Add(-1)
				done.Store(b.Seq, true)
			case errors.Is(err, store.ErrStaleClaim), errors.Is(err, store.ErrBatchFinished):
				// Overtaken by another attempt: this one must not count.
			default:
				errc <- fmt.Errorf("complete %s: %w", b.ID(), err)
				return
			}
		}
	})
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if completions.Load() != n {
		t.Fatalf("%d completions succeeded, want exactly %d", completions.Load(), n)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchSucceeded: n})
	if run.RowsWritten != sumSeqs(n) {
		t.Fatalf("rows written %d, want %d: a stale attempt was counted", run.RowsWritten, sumSeqs(n))
	}
}

// testRaceFailComplete: the same attempt's completion and final failure race;
// exactly one of them wins.
func testRaceFailComplete(t *testing.T, s store.Store) {
	const n = 40
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, n)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for _, b := range bs {
		tok := fmt.Sprintf("tok-%d", b.Seq)
		mustClaim(t, s, b, tok)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, tok, store.Result{RowsWritten: 1})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrStaleClaim) {
				t.Errorf("complete %s lost with %v, want ErrStaleClaim", b.ID(), err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := s.FailBatch(ctx(t), r.ID, b.Seq, tok, store.Failure{Message: "x", Final: true})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrBatchFinished) {
				t.Errorf("fail %s lost with %v, want ErrBatchFinished", b.ID(), err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != n {
		t.Fatalf("%d operations won, want exactly %d (one per batch)", wins.Load(), n)
	}
	run := assertCounters(t, s, r.ID, nil)
	if run.BatchesSucceeded+run.BatchesFailed != n || run.RowsWritten != run.BatchesSucceeded {
		t.Fatalf("succeeded %d + failed %d, rows %d: want %d batches with one row per success", run.BatchesSucceeded, run.BatchesFailed, run.RowsWritten, n)
	}
}

// testRaceAppendBatches: 50 planners append the same step; one wins.
func testRaceAppendBatches(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	from := ""
	for round := 0; round < 3; round++ {
		var wins atomic.Int64
		race(racers, func(int) {
			_, err := s.AppendBatches(ctx(t), r.ID, store.PlanStep{From: from, To: keyOf((round + 1) * 10), Batches: ranges(round*10, 10)})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("losing planner got %v, want ErrConflict", err)
			}
		})
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d planners won, want 1", round, wins.Load())
		}
		from = keyOf((round + 1) * 10)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: 30})
	if run.PlanCursor != keyOf(30) {
		t.Fatalf("plan cursor %q, want %q", run.PlanCursor, keyOf(30))
	}
	for i, b := range allBatches(t, s, r.ID, store.BatchFilter{}) {
		if b.Seq != int64(i+1) || b.Hi != keyOf(i+1) {
			t.Fatalf("batch %d: seq %d hi %q; ranges were planned twice or out of order", i, b.Seq, b.Hi)
		}
	}
}

// testRaceCancelAgainstClaims: workers claim and complete while the run is
// cancelled; every batch ends succeeded or cancelled, never both, never lost.
func testRaceCancelAgainstClaims(t *testing.T, s store.Store) {
	const n = 150
	r := runningRun(t, s)
	bs := plan(t, s, r.ID, n)
	for _, b := range bs {
		if _, err := s.EnqueueBatch(ctx(t), r.ID, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	var next, completions atomic.Int64
	var cancelled atomic.Bool
	race(21, func(w int) {
		if w == 0 {
			for next.Load() < 20 {
				time.Sleep(time.Millisecond)
			}
			if _, err := s.CancelRun(ctx(t), r.ID); err != nil {
				t.Errorf("CancelRun: %v", err)
			}
			cancelled.Store(true)
			return
		}
		for {
			i := next.Add(1) - 1
			if i >= n {
				return
			}
			b := bs[i]
			tok := fmt.Sprintf("w%d-%d", w, b.Seq)
			_, err := s.ClaimBatch(ctx(t), r.ID, b.Seq, store.Claim{Token: tok, Lease: time.Minute})
			if err != nil {
				if !errors.Is(err, store.ErrBatchFinished) && !errors.Is(err, store.ErrRunNotRunning) {
					t.Errorf("claim %s: %v", b.ID(), err)
				}
				continue
			}
			if _, err := s.CompleteBatch(ctx(t), r.ID, b.Seq, tok, store.Result{RowsWritten: 1}); err != nil {
				t.Errorf("complete %s: %v", b.ID(), err)
				continue
			}
			completions.Add(1)
			// Keep the workers from draining the run before the cancel lands.
			time.Sleep(time.Millisecond)
		}
	})
	if !cancelled.Load() {
		t.Fatal("the run was never cancelled")
	}
	run := assertCounters(t, s, r.ID, nil)
	if run.BatchesSucceeded+run.BatchesCancelled != n || run.InFlight() != 0 {
		t.Fatalf("counters %+v: want every batch succeeded or cancelled", run.Counters)
	}
	if run.BatchesSucceeded != completions.Load() || run.RowsWritten != completions.Load() {
		t.Fatalf("%d completions but %d succeeded batches and %d rows", completions.Load(), run.BatchesSucceeded, run.RowsWritten)
	}
	if run.BatchesCancelled == 0 {
		t.Fatalf("no batch was cancelled")
	}
	if run.State != store.RunCancelling && run.State != store.RunCancelled {
		t.Fatalf("run is %s, want cancelling or cancelled", run.State)
	}
}

// testRaceRetryAgainstClaims: concurrent retries move each failed batch once.
func testRaceRetryAgainstClaims(t *testing.T, s store.Store) {
	const n = 30
	r := runningRun(t, s)
	for _, b := range plan(t, s, r.ID, n) {
		tok := fmt.Sprint(b.Seq)
		mustClaim(t, s, b, tok)
		if _, err := s.FailBatch(ctx(t), r.ID, b.Seq, tok, store.Failure{Message: "x", Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	mustTransition(t, s, r.ID, store.RunFailed)
	var moved atomic.Int64
	race(10, func(int) {
		k, err := s.RetryBatches(ctx(t), r.ID, nil)
		if err != nil {
			t.Errorf("RetryBatches: %v", err)
		}
		moved.Add(k)
	})
	if moved.Load() != n {
		t.Fatalf("concurrent retries moved %d batches, want %d", moved.Load(), n)
	}
	run := assertCounters(t, s, r.ID, map[store.BatchState]int64{store.BatchPending: n})
	if run.State != store.RunRunning {
		t.Fatalf("run is %s, want running", run.State)
	}
	for _, b := range allBatches(t, s, r.ID, store.BatchFilter{}) {
		if b.Retries != 1 {
			t.Fatalf("batch %s retried %d times, want 1", b.ID(), b.Retries)
		}
	}
}
