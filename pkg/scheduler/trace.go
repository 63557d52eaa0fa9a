package scheduler

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// noSpan is what traceEnqueue returns with tracing off.
var noSpan trace.Span = noop.Span{}

// traceEnqueue starts the span of enqueueing batch b of run r
// (tracing.SpanEnqueue) with tr, a child of the run's root, whatever
// process created the run. Its traceparent goes into the batch's task
// (withTrace), so the worker's span of the batch is its child. With tr nil
// (tracing off) it returns ctx and a span that does nothing.
func traceEnqueue(ctx context.Context, tr trace.Tracer, r store.Run, b store.Batch) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, noSpan
	}
	return tr.Start(tracing.WithRun(ctx, r.ID, r.CreatedAt), tracing.SpanEnqueue, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.AttrRun.Int64(r.ID), tracing.AttrDefinition.String(r.Definition), tracing.AttrBatch.Int64(b.Seq),
			tracing.AttrRetry.Int(b.Retries), tracing.AttrLo.String(b.Lo), tracing.AttrHi.String(b.Hi)))
}

// withTrace gives the task the trace context of the enqueue span in ctx
// (none when tracing is off).
func withTrace(ctx context.Context, p tasks.BatchPayload) tasks.BatchPayload {
	p.Trace = tracing.Traceparent(ctx)
	return p
}

// runTraceparent is the trace context of a task the reconciler enqueues
// again: the run's root, or "" when tracing is off (tr nil).
func runTraceparent(tr trace.Tracer, r store.Run) string {
	if tr == nil {
		return ""
	}
	return tracing.FormatTraceparent(tracing.RunSpanContext(r.ID, r.CreatedAt))
}
