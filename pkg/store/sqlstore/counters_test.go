package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// A run from before schema version 2 keeps its counters in its row; after
// the migration they read the same, and its batches move on from there.
func TestMigrationKeepsCountersOfExistingRuns(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			run := startRun(ctx, t, s, 3)
			finishBatch(ctx, t, s, run.ID, 1, 5)

			// Back to version 1: the counters in the run's row, no slots.
			db := rawDB(t, d.name, url)
			downgradeToV2(t, db, d.name)
			for _, stmt := range []string{
				"UPDATE dripflow_runs SET batches_pending = 2, batches_enqueued = 0, batches_running = 0, batches_succeeded = 1, rows_read = 5, rows_written = 5, rows_skipped = 0",
				"DROP TABLE dripflow_run_counters",
				"DELETE FROM dripflow_schema_migrations WHERE version = 2",
			} {
				if err := db.Exec(stmt).Error; err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); err == nil {
				t.Fatal("a store opened on a version 1 schema")
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 2: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			want := store.Counters{BatchesPending: 2, BatchesSucceeded: 1, RowsRead: 5, RowsWritten: 5}
			if got, err := s2.GetRun(ctx, run.ID); err != nil || got.Counters != want {
				t.Fatalf("after the migration: counters %+v, %v; want %+v", got.Counters, err, want)
			}
			finishBatch(ctx, t, s2, run.ID, 2, 7)
			want = store.Counters{BatchesPending: 1, BatchesSucceeded: 2, RowsRead: 12, RowsWritten: 12}
			if got, err := s2.GetRun(ctx, run.ID); err != nil || got.Counters != want {
				t.Fatalf("after one more batch: counters %+v, %v; want %+v", got.Counters, err, want)
			}
			page, err := s2.ListRuns(ctx, store.RunFilter{})
			if err != nil || len(page.Items) != 1 || page.Items[0].Counters != want {
				t.Fatalf("ListRuns = %+v, %v; want the run with counters %+v", page.Items, err, want)
			}
		})
	}
}

// startRun creates a running run with n planned batches.
func startRun(ctx context.Context, t *testing.T, s store.Store, n int) store.Run {
	t.Helper()
	run, err := s.CreateRun(ctx, store.NewRun{Definition: "counted", Kind: store.KindBackfill, CreatedBy: "test",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	step := store.PlanStep{Done: true}
	for i := range n {
		step.Batches = append(step.Batches, store.KeyRange{Lo: keyOf(i), Hi: keyOf(i + 1)})
	}
	step.To = keyOf(n)
	if _, err := s.AppendBatches(ctx, run.ID, step); err != nil {
		t.Fatal(err)
	}
	return run
}

func keyOf(i int) string {
	if i == 0 {
		return ""
	}
	return "[" + string(rune('0'+i)) + "]"
}

// finishBatch enqueues, claims and completes batch seq with rows rows.
func finishBatch(ctx context.Context, t *testing.T, s store.Store, runID, seq, rows int64) {
	t.Helper()
	if _, err := s.EnqueueBatch(ctx, runID, seq); err != nil {
		t.Fatal(err)
	}
	token := "t" + keyOf(int(seq))
	if _, err := s.ClaimBatch(ctx, runID, seq, store.Claim{Worker: "w", Token: token, Lease: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CompleteBatch(ctx, runID, seq, token, store.Result{RowsRead: rows, RowsWritten: rows}); err != nil {
		t.Fatal(err)
	}
}

// A run without slot rows — created by a dripflow of schema version 1 still
// running while version 2 was deployed — gets them as its batches move.
func TestRunWithoutSlotRows(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			run := startRun(ctx, t, s, 3)
			if err := rawDB(t, d.name, url).Exec("DELETE FROM dripflow_run_counters WHERE run_id = ?", run.ID).Error; err != nil {
				t.Fatal(err)
			}
			finishBatch(ctx, t, s, run.ID, 1, 5)
			finishBatch(ctx, t, s, run.ID, 2, 7)
			want := store.Counters{BatchesPending: 1, BatchesSucceeded: 2, RowsRead: 12, RowsWritten: 12}
			if got, err := s.GetRun(ctx, run.ID); err != nil || got.Counters != want {
				t.Fatalf("counters %+v, %v; want %+v", got.Counters, err, want)
			}
		})
	}
}
