package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// otlpReceiver is an OTLP/HTTP (protobuf) trace receiver: what a
// collector would get from dripflow's processes, by service name.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not OTLP/HTTP protobuf traces", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.Resource.GetAttributes() {
			if a.Key == "service.name" {
				service = a.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans[service] = append(o.spans[service], ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

// A scheduler and a worker, separate processes told only
// OTEL_EXPORTER_OTLP_ENDPOINT, export one run's spans into one trace: each
// batch's worker span is the child of the scheduler's enqueue span, across
// the queue.
func TestProcessTracesToOTLP(t *testing.T) {
	rcv := &otlpReceiver{spans: map[string][]*tracepb.Span{}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	c := newCluster(t)
	c.env = append(c.env, "OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL, "OTEL_BSP_SCHEDULE_DELAY=100", "OTEL_SERVICE_NAME=")
	const items, size = 2000, 500
	c.seedItems(items)
	sch := c.scheduler()
	w := c.worker(2)
	r := c.createRun(control.NewRun{BatchSize: ptr(size)})
	r = c.waitDone(r.ID, 2*time.Minute)
	c.assertExactlyOnce(r, items, size)
	// Stopping flushes what the processes have not exported yet.
	sch.stop(t)
	w.stop(t)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	want := tracing.RunSpanContext(r.ID, r.CreatedAt)
	tid := want.TraceID()
	enqueued := map[string]int64{} // span id → batch seq
	for _, s := range rcv.spans["dripflow-scheduler"] {
		if s.Name != tracing.SpanEnqueue {
			continue
		}
		if !bytes.Equal(s.TraceId, tid[:]) {
			t.Errorf("scheduler's enqueue span in trace %x, not the run's %s", s.TraceId, tid)
		}
		if sid := want.SpanID(); !bytes.Equal(s.ParentSpanId, sid[:]) {
			t.Errorf("enqueue span's parent %x, want the run's root %s", s.ParentSpanId, sid)
		}
		enqueued[string(s.SpanId)] = intAttr(s, tracing.AttrBatch)
	}
	batches := 0
	for _, s := range rcv.spans["dripflow-worker"] {
		if s.Name != tracing.SpanBatch {
			continue
		}
		batches++
		seq := intAttr(s, tracing.AttrBatch)
		if !bytes.Equal(s.TraceId, tid[:]) {
			t.Errorf("worker's batch %d span in trace %x, not the run's %s", seq, s.TraceId, tid)
		}
		if got, ok := enqueued[string(s.ParentSpanId)]; !ok || got != seq {
			t.Errorf("worker's batch %d span's parent %x is not the scheduler's enqueue span of it", seq, s.ParentSpanId)
		}
	}
	if want := int(r.BatchesSucceeded); len(enqueued) != want || batches != want {
		t.Fatalf("the receiver got %d enqueue spans from the scheduler and %d batch spans from the worker, want %d each (services: %v)",
			len(enqueued), batches, want, keys(rcv.spans))
	}
}

func intAttr(s *tracepb.Span, k attribute.Key) int64 {
	for _, a := range s.Attributes {
		if a.Key == string(k) {
			return a.Value.GetIntValue()
		}
	}
	return -1
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
