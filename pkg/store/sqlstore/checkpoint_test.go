package sqlstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// claimedBatch creates a running run with one batch claimed with token.
func claimedBatch(t *testing.T, s *sqlstore.Store, token string) store.Batch {
	t.Helper()
	ctx := testCtx(t)
	r, err := s.CreateRun(ctx, store.NewRun{Definition: "backfill", Kind: store.KindBackfill,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	bs, err := s.AppendBatches(ctx, r.ID, store.PlanStep{To: "10", Done: true, Batches: []store.KeyRange{{Lo: "", Hi: "10"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimBatch(ctx, r.ID, bs[0].Seq, store.Claim{Worker: "w", Token: token, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CompleteBatchTx joins the caller's transaction: the checkpoint commits or
// rolls back with the caller's own writes.
func TestCompleteBatchTx(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s := openStore(t, d.url(t))
			db := s.DB().WithContext(ctx)
			if err := db.Exec("CREATE TABLE app_rows (id INTEGER NOT NULL PRIMARY KEY, note VARCHAR(50) NOT NULL)").Error; err != nil {
				t.Fatalf("create the application's table: %v", err)
			}
			count := func() int64 {
				var n int64
				if err := db.Raw("SELECT COUNT(*) FROM app_rows").Scan(&n).Error; err != nil {
					t.Fatalf("count app_rows: %v", err)
				}
				return n
			}
			b := claimedBatch(t, s, "tok")
			before, err := s.GetRun(ctx, b.RunID)
			if err != nil {
				t.Fatal(err)
			}
			result := store.Result{RowsRead: 3, RowsWritten: 2, RowsSkipped: 1, Duration: time.Second}

			// Rolled back: neither the row nor the checkpoint.
			tx := db.Begin()
			if err := tx.Exec("INSERT INTO app_rows (id, note) VALUES (1, 'backfilled')").Error; err != nil {
				t.Fatalf("insert in the caller's transaction: %v", err)
			}
			got, err := s.CompleteBatchTx(ctx, tx, b.RunID, b.Seq, "tok", result)
			if err != nil {
				t.Fatalf("CompleteBatchTx: %v", err)
			}
			if got.State != store.BatchSucceeded || got.RowsWritten != 2 {
				t.Fatalf("CompleteBatchTx returned %s with %d rows written", got.State, got.RowsWritten)
			}
			if err := tx.Rollback().Error; err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if n := count(); n != 0 {
				t.Fatalf("%d application rows after rollback, want 0", n)
			}
			stored, err := s.GetBatch(ctx, b.RunID, b.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if stored.State != store.BatchRunning || stored.ClaimToken != "tok" || stored.RowsWritten != 0 {
				t.Fatalf("after rollback the batch is %s (token %q, rows %d), want still running under tok", stored.State, stored.ClaimToken, stored.RowsWritten)
			}
			if after, _ := s.GetRun(ctx, b.RunID); after.Counters != before.Counters {
				t.Fatalf("after rollback the run's counters are %+v, want unchanged %+v", after.Counters, before.Counters)
			}

			// A stale token changes nothing and leaves the transaction usable.
			tx = db.Begin()
			if err := tx.Exec("INSERT INTO app_rows (id, note) VALUES (2, 'kept')").Error; err != nil {
				t.Fatal(err)
			}
			if _, err := s.CompleteBatchTx(ctx, tx, b.RunID, b.Seq, "stale", result); !errors.Is(err, store.ErrStaleClaim) {
				t.Fatalf("CompleteBatchTx with a stale token: %v, want ErrStaleClaim", err)
			}
			if _, err := s.CompleteBatchTx(ctx, tx, b.RunID, b.Seq, "tok", store.Result{RowsRead: -1}); !errors.Is(err, store.ErrInvalidArgument) {
				t.Fatalf("CompleteBatchTx with negative rows: %v, want ErrInvalidArgument", err)
			}

			// Committed: both.
			if _, err := s.CompleteBatchTx(ctx, tx, b.RunID, b.Seq, "tok", result); err != nil {
				t.Fatalf("CompleteBatchTx: %v", err)
			}
			if err := tx.Commit().Error; err != nil {
				t.Fatalf("commit: %v", err)
			}
			if n := count(); n != 1 {
				t.Fatalf("%d application rows after commit, want 1", n)
			}
			stored, err = s.GetBatch(ctx, b.RunID, b.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if stored.State != store.BatchSucceeded || stored.RowsWritten != 2 || stored.Duration != time.Second || stored.ClaimToken != "" {
				t.Fatalf("after commit the batch is %+v", stored)
			}
			run, err := s.GetRun(ctx, b.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if run.BatchesSucceeded != 1 || run.BatchesRunning != 0 || run.RowsRead != 3 || run.RowsWritten != 2 || run.RowsSkipped != 1 {
				t.Fatalf("after commit the run's counters are %+v", run.Counters)
			}
			// The checkpoint counts once: CompleteBatch cannot complete it again.
			if _, err := s.CompleteBatch(ctx, b.RunID, b.Seq, "tok", result); !errors.Is(err, store.ErrBatchFinished) {
				t.Fatalf("CompleteBatch after CompleteBatchTx: %v, want ErrBatchFinished", err)
			}
			if _, err := s.CompleteBatchTx(ctx, nil, b.RunID, b.Seq, "tok", result); err == nil {
				t.Fatal("CompleteBatchTx with a nil transaction: no error")
			}
		})
	}
}
