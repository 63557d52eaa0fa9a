package web_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/tracing"
	"github.com/dripflow/dripflow/pkg/web"
)

// With a TracerProvider, a request is a span named by its route, and a run
// created through the API is the root of its own trace, linked with it.
func TestCreateRunTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(tracing.IDGenerator{}))
	defer tp.Shutdown(context.Background())
	e := newAPIEnv(t, func(o *web.Options) { o.TracerProvider = tp })
	r, err := e.alice.CreateRun(context.Background(), api.CreateRun{Definition: "add_default_role_to_users"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	stored, err := e.st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := tracing.RunSpanContext(id, stored.CreatedAt)
	// The request's span ends once its handler returned, which may be
	// just after the client read the response.
	var req, root *tracetest.SpanStub
	for deadline := time.Now().Add(5 * time.Second); (req == nil || root == nil) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		spans := exp.GetSpans()
		for i, s := range spans {
			switch s.Name {
			case "POST /api/v1/runs":
				req = &spans[i]
			case tracing.SpanRun:
				root = &spans[i]
			}
		}
	}
	if req == nil || root == nil {
		t.Fatalf("spans %v: want the request's and the run's root", exp.GetSpans())
	}
	if root.SpanContext.TraceID() != want.TraceID() || root.SpanContext.SpanID() != want.SpanID() {
		t.Errorf("run root %v, want the run's derived ids %v", root.SpanContext, want)
	}
	if len(root.Links) != 1 || root.Links[0].SpanContext.SpanID() != req.SpanContext.SpanID() ||
		len(req.Links) != 1 || req.Links[0].SpanContext.SpanID() != want.SpanID() {
		t.Errorf("root links %v, request links %v: want each linked with the other", root.Links, req.Links)
	}
}
