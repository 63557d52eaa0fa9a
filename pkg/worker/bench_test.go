package worker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// benchProcessBatch measures the worker's handling of one batch (claim,
// a job that does no I/O, checkpoint) on the Redis store, with the worker
// cfg sets up.
func benchProcessBatch(b *testing.B, cfg func(*worker.Config)) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(b)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	var processed int
	reg := engine.NewRegistry()
	if err := reg.Register(elsewhereJob{processed: &processed}); err != nil {
		b.Fatal(err)
	}
	c := worker.Config{Store: st, Redis: rdb, Registry: reg, Events: events.New(rdb, prefix+"events")}
	cfg(&c)
	w, err := worker.New(c)
	if err != nil {
		b.Fatal(err)
	}
	run, err := st.CreateRun(ctx, store.NewRun{Definition: "elsewhere", Kind: store.KindBackfill, CreatedBy: "bench",
		Options: elsewhereJob{}.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		b.Fatal(err)
	}
	n := b.N + 1
	ranges := make([]store.KeyRange, n)
	for i := range ranges {
		ranges[i] = store.KeyRange{Lo: fmt.Sprintf("[%d]", i), Hi: fmt.Sprintf("[%d]", i+1)}
	}
	ranges[0].Lo = ""
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: ranges[n-1].Hi, Done: true, Batches: ranges}); err != nil {
		b.Fatal(err)
	}
	for seq := int64(1); seq <= int64(n); seq++ {
		if _, err := st.EnqueueBatch(ctx, run.ID, seq); err != nil {
			b.Fatal(err)
		}
	}
	payloads := make([]tasks.BatchPayload, n)
	for i := range payloads {
		payloads[i] = tasks.BatchPayload{RunID: run.ID, Seq: int64(i + 1), Definition: "elsewhere"}
	}
	// The first batch opens the run's pipeline, once per worker.
	if err := w.ProcessBatch(ctx, payloads[0], tasks.Attempt{TaskID: payloads[0].TaskID()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 1; i < n; i++ {
		if err := w.ProcessBatch(ctx, payloads[i], tasks.Attempt{TaskID: payloads[i].TaskID()}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if processed != n {
		b.Fatalf("processed %d batches, want %d", processed, n)
	}
}

// BenchmarkProcessBatch is the per-batch cost of the worker as it is run
// by default: tracing off.
func BenchmarkProcessBatch(b *testing.B) {
	benchProcessBatch(b, func(*worker.Config) {})
}
