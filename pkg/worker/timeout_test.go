package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// slowJob's one batch takes d, or until its context ends; started, when
// set, is closed as the batch starts.
type slowJob struct {
	d        time.Duration
	attempts *atomic.Int32
	started  chan struct{}
}

func (j slowJob) Definition() store.Definition {
	return store.Definition{Name: "slow", Kind: store.KindBackfill}
}
func (j slowJob) Defaults() store.RunOptions {
	return store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}
}
func (j slowJob) Params() params.Schema { return params.Schema{} }
func (j slowJob) CanonicalParams(json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{}`), nil
}
func (j slowJob) Open(context.Context, engine.Env, json.RawMessage) (engine.Pipeline, error) {
	return slowPipeline(j), nil
}

type slowPipeline slowJob

func (slowPipeline) Start(string) string { return "" }
func (slowPipeline) Incremental() bool   { return false }
func (slowPipeline) WritesTo() *gorm.DB  { return nil }
func (slowPipeline) Count(context.Context) (int64, bool, error) {
	return 1, false, nil
}
func (slowPipeline) Next(context.Context, string, int) (string, bool, bool, error) {
	return "[1]", false, true, nil
}
func (p slowPipeline) Process(ctx context.Context, _ *gorm.DB, _, _ string) (store.Result, error) {
	p.attempts.Add(1)
	if p.started != nil {
		close(p.started)
	}
	select {
	case <-time.After(p.d):
		return store.Result{RowsRead: 1, RowsWritten: 1}, nil
	case <-ctx.Done():
		return store.Result{}, ctx.Err()
	}
}

// runSlowBatch runs one batch of slowJob{d} with the given batch timeout
// and max attempts on a real worker, and returns the batch once it has
// finished and how long that took.
func runSlowBatch(t *testing.T, d, timeout time.Duration, maxAttempts int) (store.Batch, time.Duration, int32) {
	t.Helper()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	reg := engine.NewRegistry()
	if err := reg.Register(slowJob{d: d, attempts: &attempts}); err != nil {
		t.Fatal(err)
	}
	queue := prefix + "q"
	w, err := worker.New(worker.Config{Store: st, Redis: rdb, Registry: reg, Events: events.New(rdb, prefix+"events"),
		Queue: queue, Concurrency: 1, ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	defer func() { stop(); <-done }()

	opts := slowJob{}.Defaults()
	opts.BatchTimeout, opts.MaxAttempts = timeout, maxAttempts
	run, err := st.CreateRun(ctx, store.NewRun{Definition: "slow", Kind: store.KindBackfill, CreatedBy: "test", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, run.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, run.ID, store.PlanStep{To: "[1]", Done: true, Enqueue: true, Batches: []store.KeyRange{{Hi: "[1]"}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.EnqueueBatch(ctx, tasks.BatchPayload{RunID: run.ID, Seq: 1, Definition: "slow"},
		tasks.EnqueueOptions{MaxAttempts: maxAttempts, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(d*time.Duration(maxAttempts) + 15*time.Second)
	for {
		b, err := st.GetBatch(ctx, run.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if b.State.Terminal() {
			return b, time.Since(start), attempts.Load()
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s after %s", b.State, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// batch_timeout_ms is enforced at millisecond precision: a 3s batch with a
// 500ms timeout fails each attempt after about 500ms with a clear error,
// and is retried per max attempts (asynq keeps timeouts in whole seconds
// and took 500ms for "none": the batch used to succeed after 3s).
func TestBatchTimeoutMilliseconds(t *testing.T) {
	b, took, attempts := runSlowBatch(t, 3*time.Second, 500*time.Millisecond, 2)
	if b.State != store.BatchFailed {
		t.Fatalf("batch %s after %s, want failed by its 500ms timeout", b.State, took)
	}
	if !strings.Contains(b.Error, "batch timeout 500ms exceeded") {
		t.Errorf("batch error %q, want it to say the batch timeout 500ms was exceeded", b.Error)
	}
	if attempts != 2 || b.Attempts != 2 {
		t.Errorf("batch processed %d times (%d attempts recorded), want 2 (max attempts)", attempts, b.Attempts)
	}
	if b.Duration < 450*time.Millisecond || b.Duration > 1500*time.Millisecond {
		t.Errorf("last attempt took %s, want about 500ms", b.Duration)
	}
}

// A batch timeout of 0 means none: a batch longer than asynq's own
// default would be is not cut short (asynq's default timeout is 30
// minutes; the queue must not impose one, whatever it is).
func TestBatchTimeoutZeroMeansNone(t *testing.T) {
	b, took, attempts := runSlowBatch(t, 1500*time.Millisecond, 0, 1)
	if b.State != store.BatchSucceeded || attempts != 1 {
		t.Fatalf("batch %s after %s and %d attempts, want succeeded at once", b.State, took, attempts)
	}
}
