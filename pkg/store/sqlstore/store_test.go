package sqlstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Times are stored in UTC with microsecond precision whatever the clock's
// zone, and read back in UTC.
func TestTimesAreUTCMicroseconds(t *testing.T) {
	zone := time.FixedZone("UTC+5", 5*3600)
	clock := time.Date(2030, 1, 2, 3, 4, 5, 123456789, zone)
	want := time.Date(2030, 1, 1, 22, 4, 5, 123456000, time.UTC)
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatal(err)
			}
			s, err := sqlstore.Open(ctx, url, sqlstore.Config{Now: func() time.Time { return clock }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			startAt := time.Date(2031, 6, 7, 8, 9, 10, 999999999, zone)
			created, err := s.CreateRun(ctx, store.NewRun{Definition: "d", Kind: store.KindBackfill, StartAt: &startAt,
				Options: store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TransitionRun(ctx, created.ID, store.RunRunning, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendBatches(ctx, created.ID, store.PlanStep{To: "1", Batches: []store.KeyRange{{Hi: "1"}}}); err != nil {
				t.Fatal(err)
			}
			claimed, err := s.ClaimBatch(ctx, created.ID, 1, store.Claim{Token: "t", Lease: 1500 * time.Microsecond})
			if err != nil {
				t.Fatal(err)
			}
			run, err := s.GetRun(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.GetBatch(ctx, created.ID, 1)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got *time.Time, want time.Time) {
				t.Helper()
				if got == nil {
					t.Errorf("%s is nil, want %v", what, want)
					return
				}
				if !got.Equal(want) || got.Location() != time.UTC {
					t.Errorf("%s = %v (%v), want %v in UTC", what, *got, got.Location(), want)
				}
			}
			for what, got := range map[string]time.Time{
				"created run's created_at": created.CreatedAt, "stored run's created_at": run.CreatedAt,
				"stored run's updated_at": run.UpdatedAt, "batch's created_at": b.CreatedAt,
			} {
				check(what, &got, want)
			}
			check("run's started_at", run.StartedAt, want)
			check("run's start_at", run.StartAt, time.Date(2031, 6, 7, 3, 9, 10, 999999000, time.UTC))
			check("batch's started_at", b.StartedAt, want)
			check("claimed batch's lease_until", claimed.LeaseUntil, want.Add(1500*time.Microsecond))
			check("stored batch's lease_until", b.LeaseUntil, want.Add(1500*time.Microsecond))
		})
	}
}

// Fifty goroutines work one SQLite file through two stores (so both the
// in-process queue and SQLite's busy timeout are exercised) without a single
// busy or locked error.
func TestSQLiteConcurrency(t *testing.T) {
	ctx := testCtx(t)
	url := testenv.SQLiteURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	stores := make([]*sqlstore.Store, 2)
	for i := range stores {
		s, err := sqlstore.Open(ctx, url, sqlstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	const workers, perWorker = 50, 4
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			err := func() error {
				r, err := s.CreateRun(ctx, store.NewRun{Definition: fmt.Sprintf("d%d", w%5), Kind: store.KindBackfill,
					Options: store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 1}})
				if err != nil {
					return err
				}
				if _, err := s.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
					return err
				}
				krs := make([]store.KeyRange, perWorker)
				for i := range krs {
					krs[i] = store.KeyRange{Lo: fmt.Sprint(i), Hi: fmt.Sprint(i + 1)}
				}
				bs, err := s.AppendBatches(ctx, r.ID, store.PlanStep{To: fmt.Sprint(perWorker), Done: true, Batches: krs})
				if err != nil {
					return err
				}
				for _, b := range bs {
					tok := fmt.Sprintf("%d-%d", w, b.Seq)
					if _, err := s.ClaimBatch(ctx, r.ID, b.Seq, store.Claim{Token: tok, Lease: time.Minute}); err != nil {
						return err
					}
					if _, err := s.ListRuns(ctx, store.RunFilter{Limit: 5}); err != nil {
						return err
					}
					if _, err := s.CompleteBatch(ctx, r.ID, b.Seq, tok, store.Result{RowsWritten: 1}); err != nil {
						return err
					}
				}
				_, err = s.TransitionRun(ctx, r.ID, store.RunSucceeded, nil)
				return err
			}()
			if err != nil {
				errc <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	page, err := stores[0].ListRuns(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded}, Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != workers {
		t.Fatalf("%d runs succeeded, want %d", len(page.Items), workers)
	}
	for _, r := range page.Items {
		if r.BatchesSucceeded != perWorker || r.RowsWritten != perWorker {
			t.Fatalf("run %d: counters %+v", r.ID, r.Counters)
		}
	}
}

// ExtendClaim on a finished batch says both that the claim is stale and that
// the batch is finished, so a worker's heartbeat can stop.
func TestExtendClaimOfFinishedBatch(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, testenv.SQLiteURL(t))
	b := claimedBatch(t, s, "tok")
	if _, err := s.CompleteBatch(ctx, b.RunID, b.Seq, "tok", store.Result{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.ExtendClaim(ctx, b.RunID, b.Seq, "tok", time.Minute)
	if !errors.Is(err, store.ErrStaleClaim) || !errors.Is(err, store.ErrBatchFinished) {
		t.Fatalf("ExtendClaim of a succeeded batch: %v, want ErrStaleClaim and ErrBatchFinished", err)
	}
}

// A filter naming a state twice lists each batch and run once, across pages.
func TestListingsWithRepeatedStates(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s := openStore(t, d.url(t))
			b := claimedBatch(t, s, "tok")
			krs := make([]store.KeyRange, 6)
			for i := range krs {
				krs[i] = store.KeyRange{Lo: fmt.Sprint(i), Hi: fmt.Sprint(i + 1)}
			}
			run, err := s.GetRun(ctx, b.RunID)
			if err != nil {
				t.Fatal(err)
			}
			// The helper planned its run to the end; plan a second one.
			r2, err := s.CreateRun(ctx, store.NewRun{Definition: run.Definition, Kind: store.KindBackfill, Options: run.Options})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TransitionRun(ctx, r2.ID, store.RunRunning, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendBatches(ctx, r2.ID, store.PlanStep{To: "6", Batches: krs}); err != nil {
				t.Fatal(err)
			}
			for _, seq := range []int64{2, 5} {
				if _, err := s.ClaimBatch(ctx, r2.ID, seq, store.Claim{Token: fmt.Sprint(seq), Lease: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
			f := store.BatchFilter{States: []store.BatchState{store.BatchRunning, store.BatchPending, store.BatchRunning}, Limit: 4}
			var seqs []int64
			for {
				p, err := s.ListBatches(ctx, r2.ID, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range p.Items {
					seqs = append(seqs, b.Seq)
				}
				if p.NextCursor == "" {
					break
				}
				f.Cursor = p.NextCursor
			}
			if fmt.Sprint(seqs) != "[1 2 3 4 5 6]" {
				t.Fatalf("batches %v, want [1 2 3 4 5 6] once each", seqs)
			}
			runs, err := s.ListRuns(ctx, store.RunFilter{States: []store.RunState{store.RunRunning, store.RunRunning}, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs.Items) != 1 || runs.Items[0].ID != r2.ID || runs.NextCursor == "" {
				t.Fatalf("first page of running runs: %+v", runs)
			}
			runs, err = s.ListRuns(ctx, store.RunFilter{States: []store.RunState{store.RunRunning, store.RunRunning}, Limit: 1, Cursor: runs.NextCursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs.Items) != 1 || runs.Items[0].ID != b.RunID {
				t.Fatalf("second page of running runs: %+v", runs)
			}
		})
	}
}
