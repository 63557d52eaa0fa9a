package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// elsewhereJob writes somewhere other than a database: its pipeline's
// WritesTo is nil, as engine.Pipeline allows.
type elsewhereJob struct{ processed *int }

func (j elsewhereJob) Definition() store.Definition {
	return store.Definition{Name: "elsewhere", Kind: store.KindBackfill}
}
func (j elsewhereJob) Defaults() store.RunOptions {
	return store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}
}
func (j elsewhereJob) Params() params.Schema { return params.Schema{} }
func (j elsewhereJob) CanonicalParams(json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}
func (j elsewhereJob) Open(context.Context, engine.Env, json.RawMessage) (engine.Pipeline, error) {
	return elsewherePipeline(j), nil
}

type elsewherePipeline elsewhereJob

func (elsewherePipeline) Start(string) string { return "" }
func (elsewherePipeline) Incremental() bool   { return false }
func (elsewherePipeline) WritesTo() *gorm.DB  { return nil }
func (elsewherePipeline) Count(context.Context) (int64, bool, error) {
	return 1, false, nil
}
func (elsewherePipeline) Next(context.Context, string, int) (string, bool, bool, error) {
	return "[1]", false, true, nil
}
func (p elsewherePipeline) Process(_ context.Context, tx *gorm.DB, _, _ string) (store.Result, error) {
	if tx != nil {
		return store.Result{}, nil // not expected: counted as not processed
	}
	*p.processed++
	return store.Result{RowsRead: 1, RowsWritten: 1}, nil
}

// A job that writes elsewhere runs on a worker whose store is the SQL store
// on the application database (the worker used to panic: it compared the
// job's nil database with the store's).
func TestJobWritingElsewhereWithSQLStore(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rdb, _ := testenv.Redis(t)
	var processed int
	reg := engine.NewRegistry()
	if err := reg.Register(elsewhereJob{processed: &processed}); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: st, Redis: rdb, DB: st.DB(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if !w.SameTransaction() {
		t.Fatal("SameTransaction() = false for the SQL store on its own database")
	}
	run, err := st.CreateRun(ctx, store.NewRun{Definition: "elsewhere", Kind: store.KindBackfill, CreatedBy: "test",
		Options: elsewhereJob{}.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: "[1]", Done: true, Batches: []store.KeyRange{{Hi: "[1]"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnqueueBatch(ctx, run.ID, 1); err != nil {
		t.Fatal(err)
	}
	p := tasks.BatchPayload{RunID: run.ID, Seq: 1, Definition: "elsewhere"}
	if err := w.ProcessBatch(ctx, p, tasks.Attempt{TaskID: p.TaskID()}); err != nil {
		t.Fatalf("ProcessBatch: %v", err)
	}
	b, err := st.GetBatch(ctx, run.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.State != store.BatchSucceeded || b.RowsWritten != 1 || processed != 1 {
		t.Fatalf("batch %s with %d rows written, processed %d times; want succeeded, 1 row, once", b.State, b.RowsWritten, processed)
	}
}

// A worker that already runs a run's batches reads the run's state through
// the claim: after a pause its next batch is refused (the task revoked, the
// batch left to the scheduler), after the resume it runs.
func TestOpenedRunPausedAndResumed(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var processed int
	reg := engine.NewRegistry()
	if err := reg.Register(elsewhereJob{processed: &processed}); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: st, Redis: rdb, Registry: reg, Events: events.New(rdb, prefix+"events")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.CreateRun(ctx, store.NewRun{Definition: "elsewhere", Kind: store.KindBackfill, CreatedBy: "test",
		Options: elsewhereJob{}.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: "[2]", Done: true,
		Batches: []store.KeyRange{{Hi: "[1]"}, {Lo: "[1]", Hi: "[2]"}}}); err != nil {
		t.Fatal(err)
	}
	process := func(seq int64) error {
		if b, err := st.GetBatch(ctx, run.ID, seq); err != nil {
			t.Fatal(err)
		} else if b.State == store.BatchPending {
			if _, err := st.EnqueueBatch(ctx, run.ID, seq); err != nil {
				t.Fatal(err)
			}
		}
		p := tasks.BatchPayload{RunID: run.ID, Seq: seq, Definition: "elsewhere"}
		return w.ProcessBatch(ctx, p, tasks.Attempt{TaskID: p.TaskID()})
	}
	if err := process(1); err != nil {
		t.Fatalf("batch 1: %v", err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunPaused, nil); err != nil {
		t.Fatal(err)
	}
	if err := process(2); !errors.Is(err, tasks.ErrRevoke) || !errors.Is(err, store.ErrRunNotRunning) {
		t.Fatalf("batch 2 of the paused run: %v, want a revoked task because the run is not running", err)
	}
	if b, _ := st.GetBatch(ctx, run.ID, 2); b.State != store.BatchEnqueued || b.Attempts != 0 {
		t.Fatalf("batch 2 of the paused run is %s after %d attempts, want enqueued and never claimed", b.State, b.Attempts)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if err := process(2); err != nil {
		t.Fatalf("batch 2 after the resume: %v", err)
	}
	if got, err := st.GetRun(ctx, run.ID); err != nil || got.BatchesSucceeded != 2 || processed != 2 {
		t.Fatalf("run: %+v (%v), processed %d; want 2 batches succeeded, each processed once", got.Counters, err, processed)
	}
}
