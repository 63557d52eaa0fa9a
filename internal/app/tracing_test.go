package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/dripflow/dripflow/pkg/tracing"
)

func TestTraceConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		enabled  bool
		protocol string
		sampler  string // in the sampler's description
		err      string // in the error
	}{
		{name: "nothing set: off", env: nil},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, enabled: true, protocol: "http/protobuf", sampler: "AlwaysOnSampler"},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, enabled: true, protocol: "http/protobuf"},
		{name: "exporter otlp alone", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, enabled: true, protocol: "http/protobuf"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, enabled: true, protocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, enabled: true, protocol: "http/protobuf"},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, enabled: true, protocol: "http/protobuf", sampler: "TraceIDRatioBased{0.25}"},
		{name: "always off", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_off"}, enabled: true, protocol: "http/protobuf", sampler: "AlwaysOffSampler"},
		{name: "zipkin", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "OTEL_TRACES_EXPORTER"},
		{name: "http/json", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "jaeger_remote", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "jaeger_remote"}, err: "OTEL_TRACES_SAMPLER"},
		{name: "ratio above 1", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, err: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "ratio not a number", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, err: "OTEL_TRACES_SAMPLER_ARG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := TraceConfigFromEnv(func(k string) string { return tc.env[k] }, "dripflow-worker")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || c.Enabled != tc.enabled || (tc.enabled && c.Protocol != tc.protocol) || c.ServiceName != "dripflow-worker" {
				t.Fatalf("got %+v, %v; want enabled %v protocol %q", c, err, tc.enabled, tc.protocol)
			}
			if tc.sampler != "" && !strings.Contains(c.Sampler.Description(), tc.sampler) {
				t.Errorf("sampler %s, want %s", c.Sampler.Description(), tc.sampler)
			}
		})
	}
}

// A ratio sampler keeps or drops a run's spans alike in every process: a
// batch's parent (the run's derived root, remote and flagged sampled) is
// decided again by the trace id. And a client span with no parent (a
// polling query) is dropped.
func TestSamplerDecidesRunsAlike(t *testing.T) {
	s, err := samplerFromEnv("parentbased_traceidratio", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp, err := NewTracerProvider(context.Background(), TraceConfig{ServiceName: "t", Sampler: s}, sdktrace.WithSyncer(exp))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	tr := tracing.Tracer(tp)
	kept := 0
	for id := int64(1); id <= 200; id++ {
		exp.Reset()
		sc := tracing.RunSpanContext(id, time.Unix(1700000000, 0))
		tracing.StartRun(context.Background(), tr, id, time.Unix(1700000000, 0), time.Now()).End()
		_, b := tr.Start(tracing.WithRun(context.Background(), id, time.Unix(1700000000, 0)), tracing.SpanBatch)
		b.End()
		n := len(exp.GetSpans())
		if n != 0 && n != 2 {
			t.Fatalf("run %d (trace %s): %d of its 2 spans kept", id, sc.TraceID(), n)
		}
		if n == 2 {
			kept++
		}
	}
	if kept < 60 || kept > 140 {
		t.Errorf("%d of 200 runs kept at ratio 0.5", kept)
	}
	exp.Reset()
	_, stray := tr.Start(context.Background(), "SELECT", trace.WithSpanKind(trace.SpanKindClient))
	stray.End()
	ctx, parent := tr.Start(tracing.WithRun(context.Background(), 3, time.Unix(1700000000, 0)), "op")
	_, child := tr.Start(ctx, "SELECT", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	parent.End()
	for _, sp := range exp.GetSpans() {
		if sp.Name == "SELECT" && !sp.Parent.IsValid() {
			t.Error("a parentless client span was kept")
		}
	}
}

// With no OTEL_* variable set, StartTracing leaves tracing off: no
// TracerProvider, no exporter, no goroutine.
func TestStartTracingOff(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	a := &App{Log: zaptest.NewLogger(t)}
	if err := a.StartTracing(context.Background(), "dripflow-worker"); err != nil {
		t.Fatal(err)
	}
	if a.Tracer != nil || len(a.closers) != 0 {
		t.Fatalf("tracing off left a TracerProvider %v and %d closers", a.Tracer, len(a.closers))
	}
}

// With an OTLP endpoint set, a process's spans reach it over OTLP/HTTP
// (protobuf) with the service's name, at the latest when the App closes.
func TestStartTracingExportsOTLP(t *testing.T) {
	var mu sync.Mutex
	var names []string
	var services []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not OTLP/HTTP protobuf traces", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					services = append(services, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(nil)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)

	a := &App{Log: zaptest.NewLogger(t)}
	if err := a.StartTracing(context.Background(), "dripflow-scheduler"); err != nil {
		t.Fatal(err)
	}
	if a.Tracer == nil {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	_, span := tracing.Tracer(a.Tracer).Start(context.Background(), tracing.SpanEnqueue)
	span.End()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 1 || names[0] != tracing.SpanEnqueue || len(services) != 1 || services[0] != "dripflow-scheduler" {
		t.Fatalf("the receiver got spans %v of services %v; want one %s of dripflow-scheduler", names, services, tracing.SpanEnqueue)
	}
}
