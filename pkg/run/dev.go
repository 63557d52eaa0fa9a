package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/app"
	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/web"
	"github.com/dripflow/dripflow/pkg/worker"
)

// Dev runs scheduler, worker and web in one process: on DRIPFLOW_REDIS_URL
// and DRIPFLOW_DATABASE_URL when set, otherwise on an embedded Redis and a
// SQLite file, with the definitions of engine.DefaultRegistry and no demo
// data. Authentication is off: dev mode is for one person on their own
// machine.
func Dev(ctx context.Context, args []string, out io.Writer) error {
	return DevWith(ctx, args, out, nil)
}

// DevWith is Dev with options: opts.Demo's tables are created and, when
// empty, loaded with --seed-rows rows; opts.Registry replaces
// engine.DefaultRegistry.
func DevWith(ctx context.Context, args []string, out io.Writer, opts *DevOptions) error {
	o := opts.orZero()
	reg := o.registry()
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	addr := fs.String("http-addr", "127.0.0.1:8080", "where the UI and API listen")
	dataDir := fs.String("data-dir", ".dripflow", "where the SQLite file lives when DRIPFLOW_DATABASE_URL is not set")
	seedRows := fs.Int("seed-rows", 100000, "demo rows to load into empty demo tables (when the program has a demo)")
	concurrency := fs.Int("concurrency", 4, "batches processed at once")
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seedRows < 0 {
		return fmt.Errorf("--seed-rows must not be negative, got %d", *seedRows)
	}
	if cfg.LogFormat == "json" && os.Getenv("DRIPFLOW_LOG_FORMAT") == "" {
		cfg.LogFormat = "console"
	}
	log, err := app.NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck

	if cfg.RedisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return fmt.Errorf("start the embedded Redis: %w", err)
		}
		defer mr.Close()
		// miniredis keeps time still; let keys expire as in a real Redis.
		// The clock stops before the embedded Redis closes, whichever way
		// DevWith returns.
		stopClock, clockDone := make(chan struct{}), make(chan struct{})
		defer func() { close(stopClock); <-clockDone }()
		go func() {
			defer close(clockDone)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopClock:
					return
				case <-t.C:
					mr.FastForward(time.Second)
				}
			}
		}()
		cfg.RedisURL = "redis://" + mr.Addr()
		fmt.Fprintln(out, "Using an embedded Redis: the queue keeps nothing across restarts (runs and batches are kept in the database; queued batches are re-enqueued on start). Set DRIPFLOW_REDIS_URL to use your own.")
	}
	if cfg.DatabaseURL == "" {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		abs, err := filepath.Abs(filepath.Join(*dataDir, "dripflow.db"))
		if err != nil {
			return err
		}
		cfg.DatabaseURL = "sqlite://" + abs
		fmt.Fprintf(out, "Using SQLite at %s. Set DRIPFLOW_DATABASE_URL to use PostgreSQL or MySQL.\n", abs)
	}
	if cfg.Store == "sql" {
		if err := sqlstore.MigrateURL(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.StartTracing(ctx, "dripflow-dev"); err != nil {
		return err
	}
	if o.Demo != nil {
		if err := o.Demo.Migrate(ctx, a.DB); err != nil {
			return err
		}
		rows, err := o.Demo.Rows(ctx, a.DB)
		if err != nil {
			return err
		}
		if rows == 0 && *seedRows > 0 {
			fmt.Fprintf(out, "Loading %d demo rows…\n", *seedRows)
			if err := o.Demo.Seed(ctx, a.DB, *seedRows); err != nil {
				return err
			}
		}
	}
	if err := reg.Sync(ctx, a.Store); err != nil {
		return err
	}
	loadSpecs(reg, a.Store)
	sch, err := scheduler.New(scheduler.Config{
		Store: a.Store, Redis: a.Redis, DB: a.DB, Registry: reg, Events: a.Events, Resources: a.Resources, Tasks: tasks.Config{Queue: cfg.Queue},
		ReconcileInterval: 5 * time.Second, ReconcileGrace: 5 * time.Second, Logger: log.Named("scheduler"),
		FlowsDir: cfg.FlowsDir, FlowsDirInterval: cfg.FlowsDirInterval, HealthInterval: cfg.HealthInterval, TracerProvider: a.Tracer,
		RunDefaults: RunDefaults(cfg),
		Notify:      cfg.Notifications.Notify(),
	})
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{
		Store: a.Store, Redis: a.Redis, DB: a.DB, Registry: reg, Events: a.Events, Resources: a.Resources, Queue: cfg.Queue,
		Concurrency: *concurrency, ShutdownTimeout: 10 * time.Second, ClaimLease: 30 * time.Second, Logger: log.Named("worker"),
		TracerProvider: a.Tracer,
	})
	if err != nil {
		return err
	}
	h, err := web.Handler(web.Options{
		Store: a.Store, Registry: reg, Redis: a.Redis, RedisURL: cfg.RedisURL, DB: a.DB, Resources: a.Resources, Events: a.Events, Queue: cfg.Queue,
		Auth:    web.Auth{Disabled: true, InsecureCookies: true},
		Metrics: promhttp.Handler(), Logger: log.Named("web"), TracerProvider: a.Tracer,
		RunDefaults: RunDefaults(cfg),
	})
	if err != nil {
		return err
	}
	defer h.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for name, fn := range map[string]func(context.Context) error{
		"scheduler": sch.Run,
		"worker":    w.Run,
		"web":       func(ctx context.Context) error { return serve(ctx, *addr, h, log.Named("web")) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	fmt.Fprintf(out, "\ndripflow dev is running: http://%s/  (API: http://%s/api/v1, queues: http://%s/monitoring/)\nAuthentication is off in dev mode. Press Ctrl-C to stop.\n\n", *addr, *addr, *addr)
	wg.Wait()
	close(errc)
	for err := range errc {
		return err
	}
	log.Info("stopped", zap.String("mode", "dev"))
	return nil
}
