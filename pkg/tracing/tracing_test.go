package tracing_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/dripflow/dripflow/pkg/tracing"
)

// Every process derives the same trace for a run, and no other run's.
func TestRunSpanContext(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 123456000, time.UTC)
	a := tracing.RunSpanContext(42, at)
	if b := tracing.RunSpanContext(42, at.In(time.FixedZone("x", 3600))); !a.Equal(b) {
		t.Errorf("run 42 in another time zone: %v, want %v", b, a)
	}
	if !a.IsValid() || !a.IsRemote() || !a.IsSampled() {
		t.Errorf("run span context %v: want valid, remote and sampled", a)
	}
	for _, other := range []trace.SpanContext{tracing.RunSpanContext(43, at), tracing.RunSpanContext(42, at.Add(time.Microsecond))} {
		if other.TraceID() == a.TraceID() || other.SpanID() == a.SpanID() {
			t.Errorf("another run (or a run 42 of another database) shares run 42's ids: %v", other)
		}
	}
}

// The root span a run's creator records has the derived ids, links the
// request that created it, and the request links it back.
func TestStartRun(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tracing.IDGenerator{}))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	ctx, req := tr.Start(context.Background(), "request")
	at := time.Now().UTC().Truncate(time.Microsecond)
	start := at.Add(-time.Millisecond)
	tracing.StartRun(ctx, tracing.Tracer(tp), 7, at, start).End()
	req.End()
	// A span that is not a run's root gets random ids in the same context.
	_, other := tr.Start(ctx, "child")
	other.End()

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	root, request, child := spans[0], spans[1], spans[2]
	want := tracing.RunSpanContext(7, at)
	if root.Name != tracing.SpanRun || root.SpanContext.TraceID() != want.TraceID() || root.SpanContext.SpanID() != want.SpanID() ||
		root.Parent.IsValid() || !root.StartTime.Equal(start) {
		t.Errorf("root %s %v parent %v start %v; want %s with ids %v, no parent, start %v", root.Name, root.SpanContext, root.Parent, root.StartTime, tracing.SpanRun, want, start)
	}
	if len(root.Links) != 1 || root.Links[0].SpanContext.SpanID() != request.SpanContext.SpanID() {
		t.Errorf("root's links %v, want the request", root.Links)
	}
	if len(request.Links) != 1 || request.Links[0].SpanContext.SpanID() != want.SpanID() {
		t.Errorf("request's links %v, want the run's root", request.Links)
	}
	if child.SpanContext.TraceID() != request.SpanContext.TraceID() || child.SpanContext.SpanID() == want.SpanID() {
		t.Errorf("a request's child %v: want the request's trace and a span id of its own", child.SpanContext)
	}
	if tracing.StartRun(ctx, nil, 7, at, start) != nil {
		t.Error("StartRun with tracing off returned a span")
	}
}

func TestTraceparent(t *testing.T) {
	sc := tracing.RunSpanContext(9, time.Unix(1700000000, 0))
	s := tracing.FormatTraceparent(sc)
	if len(s) != 55 || s[:3] != "00-" || s[len(s)-3:] != "-01" {
		t.Fatalf("traceparent %q", s)
	}
	back, ok := tracing.ParseTraceparent(s)
	if !ok || back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || !back.IsSampled() || !back.IsRemote() {
		t.Errorf("ParseTraceparent(%q) = %v, %v; want %v", s, back, ok, sc)
	}
	for _, bad := range []string{"", "00-", s[:54], s + "0", "01" + s[2:], "00-" + "00000000000000000000000000000000" + s[35:],
		s[:36] + "0000000000000000" + s[52:], s[:53] + "zz", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"} {
		if _, ok := tracing.ParseTraceparent(bad); ok {
			t.Errorf("ParseTraceparent(%q) accepted", bad)
		}
	}
	if got := tracing.Traceparent(context.Background()); got != "" {
		t.Errorf("Traceparent without a span = %q", got)
	}
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: sc.SpanID()}))
	if got := tracing.Traceparent(unsampled); got != "" {
		t.Errorf("Traceparent of an unsampled span = %q, want none", got)
	}
}
