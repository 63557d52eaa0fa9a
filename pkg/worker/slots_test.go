package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// The worker's slot metrics show a batch while it is handled and count
// the time its slot spent on it, which the batch row of a same-transaction
// checkpoint cannot (it is written before the commit).
func TestSlotMetrics(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const hold = 150 * time.Millisecond
	var attempts atomic.Int32
	job := slowJob{d: hold, attempts: &attempts, started: make(chan struct{})}
	reg := engine.NewRegistry()
	if err := reg.Register(job); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: st, Redis: rdb, Registry: reg, Events: events.New(rdb, prefix+"events")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.CreateRun(ctx, store.NewRun{Definition: "slow", Kind: store.KindBackfill, CreatedBy: "test", Options: job.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: "[1]", Done: true, Enqueue: true, Batches: []store.KeyRange{{Hi: "[1]"}}}); err != nil {
		t.Fatal(err)
	}

	busyBefore, runningBefore := value(t, metrics.WorkerBusy), value(t, metrics.WorkerRunning)
	p := tasks.BatchPayload{RunID: run.ID, Seq: 1, Definition: "slow"}
	done := make(chan error, 1)
	go func() { done <- w.ProcessBatch(ctx, p, tasks.Attempt{TaskID: p.TaskID()}) }()
	<-job.started
	if got := value(t, metrics.WorkerRunning) - runningBefore; got != 1 {
		t.Errorf("dripflow_worker_batches_running while the batch runs: +%v, want +1", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("ProcessBatch: %v", err)
	}
	if got := value(t, metrics.WorkerRunning) - runningBefore; got != 0 {
		t.Errorf("dripflow_worker_batches_running after the batch: +%v, want +0", got)
	}
	if got := value(t, metrics.WorkerBusy) - busyBefore; got < hold.Seconds() || got > 10 {
		t.Errorf("dripflow_worker_busy_seconds_total grew by %.3f s for a batch held %s", got, hold)
	}
	if b, err := st.GetBatch(ctx, run.ID, 1); err != nil || b.State != store.BatchSucceeded {
		t.Fatalf("batch: %+v, %v; want succeeded", b, err)
	}
}

// value reads a gauge's or a counter's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
