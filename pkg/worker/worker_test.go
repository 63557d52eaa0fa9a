package worker_test

import (
	"context"
	"encoding/json"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
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
