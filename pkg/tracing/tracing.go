package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope (tracer name) of dripflow's spans.
const Scope = "github.com/dripflow/dripflow"

// Span names.
const (
	// SpanRun is the root of a run's trace: the creation of the run (by
	// the API, the UI or a flow trigger).
	SpanRun = "dripflow.run"
	// SpanEnqueue is the scheduler putting one batch on the queue.
	SpanEnqueue = "dripflow.enqueue"
	// SpanBatch is one attempt at a batch on a worker, with the children
	// SpanClaim, SpanProcess and SpanCheckpoint.
	SpanBatch = "dripflow.batch"
	// SpanClaim is the worker's claim of the batch in the store.
	SpanClaim = "dripflow.claim"
	// SpanProcess is source → transforms → sink over the batch's range.
	SpanProcess = "dripflow.process"
	// SpanCheckpoint records the batch's outcome in the store (in the
	// data's transaction when they share a database, with its commit).
	SpanCheckpoint = "dripflow.checkpoint"
)

// Attribute keys of dripflow's spans.
const (
	AttrRun         = attribute.Key("dripflow.run.id")
	AttrDefinition  = attribute.Key("dripflow.definition")
	AttrCreatedBy   = attribute.Key("dripflow.run.created_by")
	AttrBatch       = attribute.Key("dripflow.batch.seq")
	AttrRetry       = attribute.Key("dripflow.batch.retry")
	AttrAttempt     = attribute.Key("dripflow.batch.attempt")
	AttrLo          = attribute.Key("dripflow.batch.lo")
	AttrHi          = attribute.Key("dripflow.batch.hi")
	AttrOutcome     = attribute.Key("dripflow.batch.outcome")
	AttrRowsRead    = attribute.Key("dripflow.rows.read")
	AttrRowsWritten = attribute.Key("dripflow.rows.written")
	AttrRowsSkipped = attribute.Key("dripflow.rows.skipped")
	AttrWorker      = attribute.Key("dripflow.worker")
	AttrTask        = attribute.Key("dripflow.task.id")
)

// Tracer returns dripflow's tracer of tp, or nil when tp is nil (tracing
// off).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Scope)
}

// RunSpanContext returns the span context of the root span of the run
// created at createdAt (as the store keeps it: microseconds) with id runID.
// It is remote and sampled: the sampler of the process that uses it as a
// parent decides again by the trace id, as the creating process did.
func RunSpanContext(runID int64, createdAt time.Time) trace.SpanContext {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], uint64(runID))
	binary.BigEndian.PutUint64(in[8:], uint64(createdAt.UnixMicro()))
	sum := sha256.Sum256(append([]byte("dripflow run "), in[:]...))
	var tid trace.TraceID
	var sid trace.SpanID
	copy(tid[:], sum[:16])
	copy(sid[:], sum[16:24])
	// An all-zero id is invalid; one in 2^64 runs gets a fixed bit.
	if !tid.IsValid() {
		tid[15] = 1
	}
	if !sid.IsValid() {
		sid[7] = 1
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// WithRun returns ctx with the run's root span as its remote parent, for
// spans of the run started in a process that did not create it.
func WithRun(ctx context.Context, runID int64, createdAt time.Time) context.Context {
	return trace.ContextWithRemoteSpanContext(ctx, RunSpanContext(runID, createdAt))
}

// StartRun records the root span of a run's trace, begun at start, with
// the ids RunSpanContext derives, and links it with the span in ctx (the API
// request that created the run), in both directions. The caller ends the
// returned span; it is nil when tr is nil.
func StartRun(ctx context.Context, tr trace.Tracer, runID int64, createdAt, start time.Time, attrs ...attribute.KeyValue) trace.Span {
	if tr == nil {
		return nil
	}
	sc := RunSpanContext(runID, createdAt)
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithTimestamp(start),
		trace.WithAttributes(append(attrs, AttrRun.Int64(runID))...)}
	caller := trace.SpanFromContext(ctx)
	if c := caller.SpanContext(); c.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: c}))
		caller.AddLink(trace.Link{SpanContext: sc})
		caller.SetAttributes(AttrRun.Int64(runID))
	}
	_, span := tr.Start(context.WithValue(ctx, forcedIDs{}, sc), SpanRun, opts...)
	return span
}

// forcedIDs keys the ids IDGenerator gives the next root span.
type forcedIDs struct{}

// IDGenerator makes random ids, except for a run's root span (StartRun),
// which gets the ids RunSpanContext derives. It implements the OpenTelemetry
// SDK's IDGenerator (go.opentelemetry.io/otel/sdk/trace): pass it with
// sdktrace.WithIDGenerator to a TracerProvider of your own.
type IDGenerator struct{}

// NewIDs returns the forced ids of a run's root span, or random ones.
func (IDGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if sc, ok := ctx.Value(forcedIDs{}).(trace.SpanContext); ok {
		return sc.TraceID(), sc.SpanID()
	}
	var tid trace.TraceID
	for !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
	}
	return tid, randomSpanID()
}

// NewSpanID returns a random span id.
func (IDGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return randomSpanID() }

func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}

// Traceparent returns the W3C traceparent of the span in ctx, or "" when
// it has none (tracing off, or a span that is not sampled: the worker then
// falls back to the run's own trace).
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	return FormatTraceparent(sc)
}

// FormatTraceparent returns sc as a W3C traceparent
// ("00-<trace id>-<span id>-<flags>").
func FormatTraceparent(sc trace.SpanContext) string {
	var b [55]byte
	copy(b[:], "00-")
	tid := sc.TraceID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	sid := sc.SpanID()
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// ParseTraceparent returns the remote span context of a W3C traceparent,
// or false when s is not one (version 00, lower-case hex, non-zero ids).
func ParseTraceparent(s string) (trace.SpanContext, bool) {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(s[3:35])
	sid, err2 := trace.SpanIDFromHex(s[36:52])
	flags, err3 := hex.DecodeString(s[53:55])
	if err1 != nil || err2 != nil || err3 != nil || s[53:55] != hex.EncodeToString(flags) {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]), Remote: true}), true
}

// End ends span with err's status: an error event and status Error, or
// nothing more when err is nil. A nil span is ignored.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
