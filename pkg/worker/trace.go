package worker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// ProcessBatch handles one batch task. With tracing on it is a span
// (tracing.SpanBatch) in its run's trace — under the scheduler's enqueue
// span the task's payload names, or the run's root when it names none —
// with the children claim, process and checkpoint, and the SQL and Redis
// calls of each under them.
func (w *Worker) ProcessBatch(ctx context.Context, p tasks.BatchPayload, a tasks.Attempt) error {
	defer slotBusy()()
	if w.tracer == nil {
		return w.processBatch(ctx, p, a)
	}
	ctx, span := w.tracer.Start(w.batchParent(ctx, p), tracing.SpanBatch, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(tracing.AttrRun.Int64(p.RunID), tracing.AttrBatch.Int64(p.Seq), tracing.AttrRetry.Int(p.Retry),
			tracing.AttrAttempt.Int(a.Retried+1), tracing.AttrTask.String(a.TaskID), tracing.AttrWorker.String(w.cfg.ID)))
	if p.Definition != "" {
		span.SetAttributes(tracing.AttrDefinition.String(p.Definition))
	}
	err := w.processBatch(ctx, p, a)
	switch {
	case err == nil:
	case errors.Is(err, tasks.ErrRevoke):
		span.SetAttributes(tracing.AttrOutcome.String("revoked"))
		span.AddEvent("task revoked: the store decides the batch's fate", trace.WithAttributes(attribute.String("reason", err.Error())))
	default:
		span.SetAttributes(tracing.AttrOutcome.String("failed"))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}

// batchParent returns ctx with the batch span's parent: the payload's
// trace, else (a task enqueued while the scheduler did not trace) the run's
// root, read from the store if this worker has not opened the run.
func (w *Worker) batchParent(ctx context.Context, p tasks.BatchPayload) context.Context {
	if sc, ok := tracing.ParseTraceparent(p.Trace); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	run, ok := w.openedRun(p.RunID)
	if !ok {
		var err error
		if run, err = w.cfg.Store.GetRun(ctx, p.RunID); err != nil {
			return ctx
		}
	}
	return tracing.WithRun(ctx, run.ID, run.CreatedAt)
}

// traceClaimed adds what the claim told about the batch to its span.
func (w *Worker) traceClaimed(ctx context.Context, b store.Batch) {
	if w.tracer == nil {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(tracing.AttrLo.String(b.Lo), tracing.AttrHi.String(b.Hi))
}

// step is a child span of a batch's; its zero value (tracing off) does
// nothing and costs nothing.
type step struct {
	ctx    context.Context
	span   trace.Span
	parent trace.Span
}

// step starts the child span name of the batch span in ctx.
func (w *Worker) step(ctx context.Context, name string) step {
	if w.tracer == nil {
		return step{ctx: ctx}
	}
	c, span := w.tracer.Start(ctx, name)
	return step{ctx: c, span: span, parent: trace.SpanFromContext(ctx)}
}

// tx returns tx bound to the step's context, so the queries the step runs
// in the batch's transaction are its children.
func (s step) tx(tx *gorm.DB) *gorm.DB {
	if s.span == nil || tx == nil {
		return tx
	}
	return tx.WithContext(s.ctx)
}

// end ends the step. The store's refusals (a batch already finished,
// claimed elsewhere, of a run not running) are its answers, not errors.
func (s step) end(err error) {
	if s.span == nil {
		return
	}
	switch {
	case err == nil:
	case store.IsFinished(err), errors.Is(err, store.ErrRunNotRunning), errors.Is(err, store.ErrBatchClaimed),
		errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrStaleClaim):
		s.span.AddEvent("refused", trace.WithAttributes(attribute.String("reason", err.Error())))
	default:
		s.span.RecordError(err)
		s.span.SetStatus(codes.Error, err.Error())
	}
	s.span.End()
}

// endResult ends the process step with the batch's row counts, on it and
// on the batch span.
func (s step) endResult(r store.Result, err error) {
	if s.span == nil {
		return
	}
	rows := []attribute.KeyValue{tracing.AttrRowsRead.Int64(r.RowsRead), tracing.AttrRowsWritten.Int64(r.RowsWritten),
		tracing.AttrRowsSkipped.Int64(r.RowsSkipped)}
	s.span.SetAttributes(rows...)
	if err == nil {
		s.parent.SetAttributes(rows...)
	}
	s.end(err)
}
