// Package run is what a process's main calls: it reads the DRIPFLOW_*
// environment and flags, connects Redis, the store and the database, and
// runs a worker, a scheduler or the web server with every definition
// registered in engine.DefaultRegistry until the context ends. Import your
// definitions package (for its registrations) in the same main; ExampleWorker
// is such a main, ExampleDevWith a dev main with demo data of its own.
//
// Package run does not link dripflow's examples: demo data is what a main
// passes (DevOptions.Demo), as dripflow's own command passes examples/demo.
package run

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/app"
	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// setup parses the environment and args, and opens the process's App.
func setup(ctx context.Context, name string, args []string, extra func(*flag.FlagSet, *config.Config)) (*app.App, error) {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if extra != nil {
		extra(fs, &cfg)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cfg.Require(); err != nil {
		return nil, err
	}
	log, err := app.NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, err
	}
	a, err := app.Open(ctx, cfg, log.Named(name))
	if err != nil {
		return nil, err
	}
	if err := a.StartTracing(ctx, "dripflow-"+name); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Worker runs a worker process until ctx ends, then drains running batches.
func Worker(ctx context.Context, args []string) error {
	a, err := setup(ctx, "worker", args, func(fs *flag.FlagSet, c *config.Config) {
		fs.IntVar(&c.WorkerConcurrency, "concurrency", c.WorkerConcurrency, "batches processed at once; 0 means the CPU count (DRIPFLOW_WORKER_CONCURRENCY)")
		fs.DurationVar(&c.ClaimLease, "claim-lease", c.ClaimLease, "how long a dead worker's batch stays claimed (DRIPFLOW_CLAIM_LEASE)")
		fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long SIGTERM waits for running batches (DRIPFLOW_SHUTDOWN_TIMEOUT)")
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
	w, err := worker.New(worker.Config{
		Store: a.Store, Redis: a.Redis, DB: a.DB, Events: a.Events, Resources: a.Resources,
		Queue:             a.Config.Queue,
		Concurrency:       a.Config.WorkerConcurrency,
		ShutdownTimeout:   a.Config.ShutdownTimeout,
		ClaimLease:        a.Config.ClaimLease,
		HeartbeatInterval: a.Config.HeartbeatInterval,
		HeartbeatTTL:      a.Config.HeartbeatTTL,
		Logger:            a.Log,
		TracerProvider:    a.Tracer,
	})
	if err != nil {
		return err
	}
	a.Log.Info("definitions", zap.Int("count", len(engine.DefaultRegistry.Jobs())))
	serveOps(ctx, a, DefaultWorkerOpsAddr)
	if err := w.Run(ctx); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// Scheduler runs a scheduler process until ctx ends. Any number may run; one
// leads at a time.
func Scheduler(ctx context.Context, args []string) error {
	var poll, reconcile, grace, leaderTTL time.Duration
	a, err := setup(ctx, "scheduler", args, func(fs *flag.FlagSet, _ *config.Config) {
		fs.DurationVar(&poll, "poll-interval", time.Second, "how often every active run is checked besides events")
		fs.DurationVar(&reconcile, "reconcile-interval", 10*time.Second, "how often the queue is checked against the store")
		fs.DurationVar(&grace, "reconcile-grace", 10*time.Second, "how long an enqueued batch may miss its task before it is enqueued again")
		fs.DurationVar(&leaderTTL, "leader-ttl", 5*time.Second, "leader lease; a dead leader is replaced within about this long")
	})
	if err != nil {
		return err
	}
	defer a.Close()
	defer a.Log.Sync() //nolint:errcheck
	loadSpecs(engine.DefaultRegistry, a.Store)
	s, err := scheduler.New(scheduler.Config{
		Store: a.Store, Redis: a.Redis, DB: a.DB, Events: a.Events, Resources: a.Resources,
		Tasks:        tasks.Config{Queue: a.Config.Queue},
		PollInterval: poll, ReconcileInterval: reconcile, ReconcileGrace: grace, LeaderTTL: leaderTTL,
		FlowsDir: a.Config.FlowsDir, FlowsDirInterval: a.Config.FlowsDirInterval, HealthInterval: a.Config.HealthInterval,
		RunDefaults: RunDefaults(a.Config),
		Logger:      a.Log, TracerProvider: a.Tracer,
		Notify: a.Config.Notifications.Notify(),
	})
	if err != nil {
		return err
	}
	serveOps(ctx, a, DefaultSchedulerOpsAddr)
	return s.Run(ctx)
}
