// Package tracing is dripflow's boundary to OpenTelemetry's tracing API:
// the names of its spans and attributes, the trace every run has, and the
// W3C traceparent a batch task carries from the scheduler to the worker.
//
// Each run has one trace. Its trace id and the span id of its root span
// ("dripflow.run") are derived from the run's id and creation time, so every
// process — the web API or the scheduler that created the run, the scheduler
// that enqueues its batches, every worker that runs one — finds the run's
// trace without asking the others or the store. The root span itself is
// recorded once, by the process that created the run; it can only have the
// derived ids when the TracerProvider uses IDGenerator (dripflow's own
// processes do).
//
// The package uses only the OpenTelemetry API; the SDK, its exporters and the
// OTEL_* environment are internal/app's business. A nil TracerProvider means
// tracing is off, and every helper here then does nothing.
package tracing
