package control

import (
	"context"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// traceCreated records the root span of run r's trace (tracing.SpanRun),
// from start, when CreateRun began, to now; it is linked with the span of
// the caller in ctx (the API request), both ways.
func (c *Controller) traceCreated(ctx context.Context, start time.Time, r store.Run) {
	if c.TracerProvider == nil {
		return
	}
	span := tracing.StartRun(ctx, tracing.Tracer(c.TracerProvider), r.ID, r.CreatedAt, start,
		tracing.AttrDefinition.String(r.Definition), tracing.AttrCreatedBy.String(r.CreatedBy))
	span.End()
}
