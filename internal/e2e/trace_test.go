package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/app"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/tracing"
	"github.com/dripflow/dripflow/pkg/worker"
)

// traceEnv is an installation on the SQL store (PostgreSQL, the data's own
// database, so batches commit with their checkpoints) and Redis, whose
// scheduler and worker trace with tp when it is not nil.
type traceEnv struct {
	t     *testing.T
	st    *sqlstore.Store
	rdb   *redis.Client
	queue string
	ctl   *control.Controller
	run   func()
}

func newTraceEnv(t *testing.T, tp trace.TracerProvider) *traceEnv {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rdb, prefix := testenv.Redis(t)
	if tp != nil {
		if err := app.InstrumentTracing(tp, rdb, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := examples.Migrate(ctx, st.DB()); err != nil {
		t.Fatal(err)
	}
	if err := examples.Seed(ctx, st.DB(), 1000); err != nil {
		t.Fatal(err)
	}
	bus := events.New(rdb, prefix+"events")
	queue := prefix + "q"
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e := &traceEnv{t: t, st: st, rdb: rdb, queue: queue, ctl: &control.Controller{Store: st, Events: bus, TracerProvider: tp}}
	e.run = func() {
		rctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		sch, err := scheduler.New(scheduler.Config{
			Store: st, Redis: rdb, DB: st.DB(), Events: bus, Tasks: tasks.Config{Queue: queue},
			LeaderKey: queue + ":leader", PresenceKey: queue + ":workers", Logger: log.Named("scheduler"),
			ReconcileInterval: time.Second, ReconcileGrace: time.Second, TracerProvider: tp,
		})
		if err != nil {
			t.Fatal(err)
		}
		w, err := worker.New(worker.Config{
			Store: st, Redis: rdb, DB: st.DB(), Events: bus, Queue: queue, PresenceKey: queue + ":workers",
			Concurrency: 2, ShutdownTimeout: 5 * time.Second, Logger: log.Named("worker"), TracerProvider: tp,
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); sch.Run(rctx) }()
		go func() { defer wg.Done(); w.Run(rctx) }()
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	return e
}

// backfill runs add_default_role_to_users over the 500 users without a
// role in batches of 100, created under ctx, and returns the finished run.
func (e *traceEnv) backfill(ctx context.Context) store.Run {
	e.t.Helper()
	bs := 100
	r, err := e.ctl.CreateRun(ctx, control.NewRun{
		Definition: "add_default_role_to_users", Params: json.RawMessage(`{"role":"guest"}`), CreatedBy: "tracer", BatchSize: &bs,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := e.st.GetRun(context.Background(), r.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		if got.State.Terminal() {
			if got.State != store.RunSucceeded || got.BatchesSucceeded != 5 || got.RowsWritten != 500 {
				e.t.Fatalf("run ended %s with %+v, want succeeded: 5 batches, 500 rows", got.State, got.Counters)
			}
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d still %s", r.ID, got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskMessage is the queue's stored message of the batch task with id
// (asynq keeps finished tasks for the retention; the payload's JSON is in
// it as it is).
func (e *traceEnv) taskMessage(id string) string {
	e.t.Helper()
	msg, err := e.rdb.HGet(context.Background(), "asynq:{"+e.queue+"}:t:"+id, "msg").Result()
	if err != nil {
		e.t.Fatalf("task %s in the queue: %v", id, err)
	}
	return msg
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// One backfill, traced: the run's trace holds its creation, each batch's
// enqueueing and processing, with the claim, process and checkpoint of each
// batch and the SQL they ran under them.
func TestTraceOfOneBackfill(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp, err := app.NewTracerProvider(context.Background(), app.TraceConfig{ServiceName: "dripflow-test"}, sdktrace.WithSyncer(exp))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	e := newTraceEnv(t, tp)
	e.run()
	// The run is created under a span of its own, as the API's request.
	reqCtx, req := tp.Tracer("test").Start(context.Background(), "POST /api/v1/runs", trace.WithSpanKind(trace.SpanKindServer))
	run := e.backfill(reqCtx)
	req.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The worker ends a batch's span after the store says it succeeded:
	// wait for the last one.
	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(10 * time.Second); ; {
		spans = exp.GetSpans()
		n := 0
		for _, s := range spans {
			if s.Name == tracing.SpanBatch {
				n++
			}
		}
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ro := spans.Snapshots()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range ro {
		byID[s.SpanContext().SpanID()] = s
		children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
	}
	named := func(list []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, s := range list {
			if s.Name() == name {
				out = append(out, s)
			}
		}
		return out
	}
	want := tracing.RunSpanContext(run.ID, run.CreatedAt)

	roots := named(ro, tracing.SpanRun)
	if len(roots) != 1 {
		t.Fatalf("%d %s spans, want 1", len(roots), tracing.SpanRun)
	}
	root := roots[0]
	if root.SpanContext().TraceID() != want.TraceID() || root.SpanContext().SpanID() != want.SpanID() || root.Parent().IsValid() {
		t.Fatalf("run root %s/%s parent %v, want the ids derived from the run %s/%s and no parent",
			root.SpanContext().TraceID(), root.SpanContext().SpanID(), root.Parent().SpanID(), want.TraceID(), want.SpanID())
	}
	if v, _ := attrOf(root, tracing.AttrRun); v.AsInt64() != run.ID {
		t.Errorf("run root's %s = %v, want %d", tracing.AttrRun, v.String(), run.ID)
	}
	if links := root.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != req.SpanContext().SpanID() {
		t.Errorf("run root's links %+v, want the creating request's span", links)
	}

	batches := named(ro, tracing.SpanBatch)
	if len(batches) != 5 {
		t.Fatalf("%d batch spans, want 5 (one per batch)", len(batches))
	}
	var seqs []int64
	var rows int64
	for _, b := range batches {
		seq, _ := attrOf(b, tracing.AttrBatch)
		label := fmt.Sprintf("batch %d", seq.AsInt64())
		seqs = append(seqs, seq.AsInt64())
		if b.SpanContext().TraceID() != want.TraceID() {
			t.Errorf("%s is in trace %s, not the run's %s", label, b.SpanContext().TraceID(), want.TraceID())
		}
		enq, ok := byID[b.Parent().SpanID()]
		if !ok || enq.Name() != tracing.SpanEnqueue || enq.Parent().SpanID() != want.SpanID() {
			t.Errorf("%s's parent is %v, want the scheduler's %s span under the run root", label, b.Parent().SpanID(), tracing.SpanEnqueue)
		} else if s, _ := attrOf(enq, tracing.AttrBatch); s.AsInt64() != seq.AsInt64() {
			t.Errorf("%s's enqueue span is batch %d's", label, s.AsInt64())
		}
		if v, _ := attrOf(b, tracing.AttrRun); v.AsInt64() != run.ID {
			t.Errorf("%s's run id %v, want %d", label, v.String(), run.ID)
		}
		lo, _ := attrOf(b, tracing.AttrLo)
		hi, _ := attrOf(b, tracing.AttrHi)
		stored, err := e.st.GetBatch(context.Background(), run.ID, seq.AsInt64())
		if err != nil {
			t.Fatal(err)
		}
		if lo.AsString() != stored.Lo || hi.AsString() != stored.Hi {
			t.Errorf("%s's range (%q, %q], the store's (%q, %q]", label, lo.AsString(), hi.AsString(), stored.Lo, stored.Hi)
		}
		read, _ := attrOf(b, tracing.AttrRowsRead)
		written, _ := attrOf(b, tracing.AttrRowsWritten)
		if read.AsInt64() != stored.RowsRead || written.AsInt64() != stored.RowsWritten || written.AsInt64() != 100 {
			t.Errorf("%s's rows read %d written %d, the store's %d and %d (want 100)", label, read.AsInt64(), written.AsInt64(), stored.RowsRead, stored.RowsWritten)
		}
		rows += written.AsInt64()
		// The task carried the enqueue span's context to the worker.
		if msg := e.taskMessage(tasks.TaskID(run.ID, seq.AsInt64(), 0)); !strings.Contains(msg, `"trace":"`+tracing.FormatTraceparent(enq.SpanContext())+`"`) {
			t.Errorf("%s's task payload %q does not carry its enqueue span's traceparent", label, msg)
		}
		kids := children[b.SpanContext().SpanID()]
		for _, name := range []string{tracing.SpanClaim, tracing.SpanProcess, tracing.SpanCheckpoint} {
			if got := named(kids, name); len(got) != 1 {
				t.Errorf("%s has %d %s children, want 1", label, len(got), name)
			}
		}
		// The SQL each step ran is under it: the claim's and checkpoint's
		// on the store's tables, the process's reading and updating users.
		sqlUnder := func(step string) []string {
			var out []string
			for _, s := range named(kids, step) {
				for _, q := range children[s.SpanContext().SpanID()] {
					if v, ok := attrOf(q, "db.query.text"); ok {
						out = append(out, v.AsString())
					}
				}
			}
			return out
		}
		proc := sqlUnder(tracing.SpanProcess)
		if !slices.ContainsFunc(proc, func(q string) bool { return strings.HasPrefix(q, "SELECT") && strings.Contains(q, "users") }) ||
			!slices.ContainsFunc(proc, func(q string) bool { return strings.HasPrefix(q, "UPDATE") && strings.Contains(q, "users") }) {
			t.Errorf("%s's process span has SQL %q, want the users read and updated", label, proc)
		}
		if q := sqlUnder(tracing.SpanClaim); len(q) == 0 || !strings.Contains(strings.Join(q, " "), "dripflow_batches") {
			t.Errorf("%s's claim span has SQL %q, want the batch claimed", label, q)
		}
		if q := sqlUnder(tracing.SpanCheckpoint); len(q) == 0 || !strings.Contains(strings.Join(q, " "), "dripflow_batches") {
			t.Errorf("%s's checkpoint span has SQL %q, want the batch recorded", label, q)
		}
		for _, q := range append(proc, sqlUnder(tracing.SpanCheckpoint)...) {
			if strings.Contains(q, "guest") {
				t.Errorf("%s: a query's text carries a value: %q", label, q)
			}
		}
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []int64{1, 2, 3, 4, 5}) || rows != run.RowsWritten {
		t.Errorf("batch spans of seqs %v with %d rows, want 1..5 with the run's %d", seqs, rows, run.RowsWritten)
	}
	// The queue's Redis commands of an enqueue are under its span.
	for _, enq := range named(ro, tracing.SpanEnqueue) {
		redisCalls := 0
		for _, c := range children[enq.SpanContext().SpanID()] {
			if v, _ := attrOf(c, "db.system"); v.AsString() == "redis" || strings.HasPrefix(c.Name(), "evalsha") || strings.HasPrefix(c.Name(), "eval") {
				redisCalls++
			}
		}
		if redisCalls == 0 {
			var names []string
			for _, c := range children[enq.SpanContext().SpanID()] {
				names = append(names, c.Name())
			}
			t.Errorf("enqueue span of batch has no Redis command under it: %v", names)
			break
		}
	}
	// Polling (the scheduler's passes, the queue's dequeues) leaves no
	// trace of its own: every client span has a parent.
	for _, s := range ro {
		if s.SpanKind() == trace.SpanKindClient && !s.Parent().IsValid() {
			t.Errorf("parentless client span %q exported", s.Name())
			break
		}
	}
}

// With tracing off, a backfill exports nothing, even with a global
// TracerProvider that would record anything that reached it, and its
// tasks' payloads carry no trace.
func TestNoTraceWhenOff(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)

	e := newTraceEnv(t, nil)
	e.run()
	run := e.backfill(context.Background())
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans exported with tracing off: %v", n, exp.GetSpans()[0].Name)
	}
	for seq := int64(1); seq <= 5; seq++ {
		msg := e.taskMessage(tasks.TaskID(run.ID, seq, 0))
		want := fmt.Sprintf(`{"run":%d,"seq":%d,"def":"add_default_role_to_users"}`, run.ID, seq)
		if !strings.Contains(msg, want) || strings.Contains(msg, "trace") {
			t.Errorf("batch %d's task %q, want the payload %s and no trace", seq, msg, want)
		}
	}
}
