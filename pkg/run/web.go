package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/web"
)

// Web serves the API, the UI and /monitoring until ctx ends.
func Web(ctx context.Context, args []string) error {
	a, err := setup(ctx, "web", args, func(fs *flag.FlagSet, c *config.Config) {
		fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "listen address (DRIPFLOW_HTTP_ADDR)")
		fs.StringVar(&c.BasePath, "base-path", c.BasePath, "URL prefix, e.g. /dripflow (DRIPFLOW_BASE_PATH)")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	defer a.Log.Sync() //nolint:errcheck
	if err := engine.DefaultRegistry.Sync(ctx, a.Store); err != nil {
		return err
	}
	loadSpecs(engine.DefaultRegistry, a.Store)
	tokens, roles, err := web.ParseTokenRoles(a.Config.AuthTokens)
	if err != nil {
		return err
	}
	proxies, err := web.ParseTrustedProxies(a.Config.TrustedProxies)
	if err != nil {
		return fmt.Errorf("DRIPFLOW_TRUSTED_PROXIES: %w", err)
	}
	// The process's metrics are served behind authentication with the
	// rest, or without on an address of their own.
	var metrics http.Handler = promhttp.Handler()
	if a.Config.WebMetricsAddr != "" {
		metrics = nil
	}
	h, err := web.Handler(web.Options{
		Store: a.Store, Redis: a.Redis, RedisURL: a.Config.RedisURL, DB: a.DB, Resources: a.Resources, Events: a.Events,
		Queue: a.Config.Queue, BasePath: a.Config.BasePath,
		Auth: web.Auth{
			Tokens: tokens, ProxyHeader: a.Config.AuthProxyHeader, Disabled: a.Config.AuthDisabled,
			TrustedProxies: proxies, ProxySecret: a.Config.ProxySecret,
			Roles: roles, ProxyRoleHeader: a.Config.ProxyRoleHeader,
			SessionKey: []byte(a.Config.SessionKey), InsecureCookies: a.Config.InsecureCookies,
		},
		MonitoringReadOnly: a.Config.MonitoringReadOnly, PrometheusAddress: a.Config.PrometheusAddr,
		Metrics:     metrics,
		Logger:      a.Log,
		ReadTimeout: a.Config.HTTPReadTimeout, IdleTimeout: a.Config.HTTPIdleTimeout,
		MaxEventStreams: a.Config.MaxEventStreams, MaxEventStreamsPerIdentity: a.Config.MaxEventStreamsPerIdentity,
		RunDefaults:    RunDefaults(a.Config),
		TracerProvider: a.Tracer,
	})
	if err != nil {
		return err
	}
	defer h.Close()
	if a.Config.WebMetricsAddr == "" {
		return serveServer(ctx, a.Config.HTTPAddr, h.HTTPServer(), a.Log)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, a.Config.WebMetricsAddr, mux, a.Log.Named("metrics")) }()
	err = serveServer(ctx, a.Config.HTTPAddr, h.HTTPServer(), a.Log)
	cancel()
	if merr := <-errc; err == nil {
		err = merr
	}
	return err
}

// serve runs an HTTP server for h until ctx ends, then shuts it down
// gracefully. A slow request or an idle keep-alive connection is cut off.
func serve(ctx context.Context, addr string, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	return serveServer(ctx, addr, srv, log)
}

// serveServer runs srv on addr until ctx ends, then shuts it down
// gracefully.
func serveServer(ctx context.Context, addr string, srv *http.Server, log *zap.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	log.Info("listening", zap.String("addr", ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
