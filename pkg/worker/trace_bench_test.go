package worker_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dripflow/dripflow/pkg/worker"
)

// BenchmarkProcessBatchTraced is BenchmarkProcessBatch with tracing on,
// every span recorded (in memory).
func BenchmarkProcessBatchTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	benchProcessBatch(b, func(c *worker.Config) { c.TracerProvider = tp })
}
