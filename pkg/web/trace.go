package web

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
)

// traced wraps the router in OpenTelemetry's HTTP server instrumentation
// when Options.TracerProvider is set: a span per request named by its
// route ("POST /api/v1/runs"), continuing a caller's W3C traceparent. A
// run's creation links this span with the run's own trace. Health checks,
// metrics scrapes and static files are not traced.
func (s *Server) traced(h http.Handler) http.Handler {
	if s.opts.TracerProvider == nil {
		return h
	}
	return otelhttp.NewHandler(h, "dripflow-web",
		otelhttp.WithTracerProvider(s.opts.TracerProvider),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithFilter(func(r *http.Request) bool {
			p := r.URL.Path
			return p != "/healthz" && p != "/readyz" && p != "/metrics" && !strings.HasPrefix(p, "/static/")
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}))
}
