package scheduler

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// noSpan is what traceEnqueue returns with tracing off.
var noSpan trace.Span = noop.Span{}

// traceEnqueue starts the span of enqueueing batch b of run r
// (tracing.SpanEnqueue), a child of the run's root, whatever process
// created the run. Its traceparent goes into the batch's task, so the
// worker's span of the batch is its child.
func (s *Scheduler) traceEnqueue(ctx context.Context, r store.Run, b store.Batch) (context.Context, trace.Span) {
	tr := tracing.Tracer(s.cfg.TracerProvider)
	if tr == nil {
		return ctx, noSpan
	}
	return tr.Start(tracing.WithRun(ctx, r.ID, r.CreatedAt), tracing.SpanEnqueue, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(tracing.AttrRun.Int64(r.ID), tracing.AttrDefinition.String(r.Definition), tracing.AttrBatch.Int64(b.Seq),
			tracing.AttrRetry.Int(b.Retries), tracing.AttrLo.String(b.Lo), tracing.AttrHi.String(b.Hi)))
}

// traceparent is the trace context a batch task carries: the enqueue span
// in ctx, or "" when tracing is off.
func traceparent(ctx context.Context) string { return tracing.Traceparent(ctx) }

// runTraceparent is the trace context of a task the reconciler enqueues
// again: the run's root, or "" when tracing is off.
func (s *Scheduler) runTraceparent(r store.Run) string {
	if s.cfg.TracerProvider == nil {
		return ""
	}
	return tracing.FormatTraceparent(tracing.RunSpanContext(r.ID, r.CreatedAt))
}
