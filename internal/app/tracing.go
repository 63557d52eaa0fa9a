package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"
	oteltracing "gorm.io/plugin/opentelemetry/tracing"

	"github.com/dripflow/dripflow/pkg/tracing"
)

// TraceConfig is the tracing a process does, read from the standard OTEL_*
// environment by TraceConfigFromEnv.
type TraceConfig struct {
	// Enabled is true when an OTLP endpoint is set
	// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
	// or OTEL_TRACES_EXPORTER=otlp, unless OTEL_SDK_DISABLED=true or
	// OTEL_TRACES_EXPORTER=none.
	Enabled bool
	// Protocol is "http/protobuf" (default) or "grpc"
	// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL).
	Protocol string
	// Sampler is built from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
	// (default parentbased_always_on).
	Sampler sdktrace.Sampler
	// ServiceName is the default service.name; OTEL_SERVICE_NAME (or
	// service.name in OTEL_RESOURCE_ATTRIBUTES) wins.
	ServiceName string
}

// TraceConfigFromEnv reads the OTEL_* variables (getenv is os.Getenv when
// nil). A value it cannot honour is an error naming the variable: an
// exporter other than otlp or none, the http/json protocol, an unknown
// sampler or a ratio outside [0, 1]. Endpoints, headers, timeouts and
// batching (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*) are read by the exporter and
// the SDK themselves.
func TraceConfigFromEnv(getenv func(string) string, service string) (TraceConfig, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := TraceConfig{ServiceName: service, Protocol: "http/protobuf"}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return c, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return c, nil
	case "otlp":
		c.Enabled = true
	case "":
		c.Enabled = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return c, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported: use otlp, or none", exp)
	}
	if !c.Enabled {
		return c, nil
	}
	p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if p == "" {
		p = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch p {
	case "", "http/protobuf":
	case "grpc":
		c.Protocol = p
	default:
		return c, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not supported: use http/protobuf (default) or grpc", p)
	}
	s, err := samplerFromEnv(getenv("OTEL_TRACES_SAMPLER"), getenv("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return c, err
	}
	c.Sampler = s
	return c, nil
}

// samplerFromEnv builds the sampler OTEL_TRACES_SAMPLER names. A
// parent-based one decides again by its root sampler for a remote parent
// that is sampled: a batch's parent is the run's derived root (or the
// scheduler's span in another process), and a ratio sampler's decision,
// made from the trace id, is then the same in every process of the run.
func samplerFromEnv(name, arg string) (sdktrace.Sampler, error) {
	name = strings.TrimSpace(name)
	ratio := func() (float64, error) {
		if strings.TrimSpace(arg) == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", arg)
		}
		return r, nil
	}
	var root sdktrace.Sampler
	base, parentBased := strings.CutPrefix(name, "parentbased_")
	if name == "" {
		base, parentBased = "always_on", true
	}
	switch base {
	case "always_on":
		root = sdktrace.AlwaysSample()
	case "always_off":
		root = sdktrace.NeverSample()
	case "traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		root = sdktrace.TraceIDRatioBased(r)
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported: use always_on, always_off, traceidratio or their parentbased_ forms", name)
	}
	if !parentBased {
		return strayClientSampler{root}, nil
	}
	return strayClientSampler{sdktrace.ParentBased(root, sdktrace.WithRemoteParentSampled(root))}, nil
}

// strayClientSampler drops client spans without a parent: the SQL and
// Redis calls of polling loops (the scheduler's passes, the queue's
// dequeues) that no traced operation made, which would otherwise each be a
// trace of one span.
type strayClientSampler struct{ sdktrace.Sampler }

func (s strayClientSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Kind == trace.SpanKindClient && !trace.SpanContextFromContext(p.ParentContext).IsValid() {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return s.Sampler.ShouldSample(p)
}

func (s strayClientSampler) Description() string {
	return "DropParentlessClientSpans{" + s.Sampler.Description() + "}"
}

// NewTracerProvider returns the TracerProvider dripflow's processes use:
// cfg's sampler, the service's resource, run root spans with their derived
// ids (tracing.IDGenerator), and the given span processors (the OTLP
// exporter's batcher; an in-memory exporter in tests).
func NewTracerProvider(ctx context.Context, cfg TraceConfig, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(), resource.WithProcessPID())
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	sampler := cfg.Sampler
	if sampler == nil {
		sampler, _ = samplerFromEnv("", "")
	}
	all := append([]sdktrace.TracerProviderOption{
		sdktrace.WithResource(res), sdktrace.WithSampler(sampler), sdktrace.WithIDGenerator(tracing.IDGenerator{}),
	}, opts...)
	return sdktrace.NewTracerProvider(all...), nil
}

// GormUser is a *gorm.DB, or a store with connection pools of its own
// (*sqlstore.Store).
type GormUser interface{ Use(gorm.Plugin) error }

// InstrumentTracing traces rdb's commands (go-redis's redisotel, without
// their arguments) and the queries of each of dbs (gorm's OpenTelemetry
// plugin, without the queries' values) with tp. rdb may be nil; a db that
// has the plugin already (a store's DB) keeps it.
func InstrumentTracing(tp trace.TracerProvider, rdb redis.UniversalClient, dbs ...GormUser) error {
	for _, db := range dbs {
		if db == nil {
			continue
		}
		p := oteltracing.NewPlugin(oteltracing.WithTracerProvider(tp), oteltracing.WithoutQueryVariables(), oteltracing.WithoutMetrics())
		if err := db.Use(p); err != nil && !errors.Is(err, gorm.ErrRegistered) {
			return fmt.Errorf("trace SQL queries: %w", err)
		}
	}
	if rdb != nil {
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)); err != nil {
			return fmt.Errorf("trace Redis commands: %w", err)
		}
	}
	return nil
}

// StartTracing turns tracing on for the process when the OTEL_* environment
// asks for it (see TraceConfigFromEnv), with service as the default
// service.name: an OTLP exporter, the process's TracerProvider in
// a.Tracer (and as OpenTelemetry's global one, with the W3C propagators),
// and the App's database and Redis clients traced. Close flushes the spans
// not yet exported. When tracing is off it does nothing: a.Tracer stays nil,
// and no exporter or goroutine is started.
func (a *App) StartTracing(ctx context.Context, service string) error {
	cfg, err := TraceConfigFromEnv(nil, service)
	if err != nil || !cfg.Enabled {
		return err
	}
	var exp sdktrace.SpanExporter
	if cfg.Protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return fmt.Errorf("OTLP trace exporter: %w", err)
	}
	tp, err := NewTracerProvider(ctx, cfg, sdktrace.WithBatcher(exp))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			return fmt.Errorf("flush spans: %w", err)
		}
		return nil
	})
	var dbs []GormUser
	if a.DB != nil {
		dbs = append(dbs, a.DB)
	}
	if st, ok := a.Store.(GormUser); ok {
		dbs = append(dbs, st)
	}
	if err := InstrumentTracing(tp, a.Redis, dbs...); err != nil {
		return err
	}
	log := a.Log
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if !errors.Is(err, context.Canceled) {
			log.Warn("tracing", zap.Error(err))
		}
	}))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	a.Tracer = tp
	log.Info("tracing on", zap.String("protocol", cfg.Protocol), zap.String("sampler", cfg.Sampler.Description()))
	return nil
}
