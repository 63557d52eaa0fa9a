// Package scheduler turns runs into batches. The leader among any number of
// schedulers (a lease in Redis) starts runs when their time comes, plans each
// running run's key ranges lazily — at most max_in_flight batches of a run
// queued or running, the first one at once — and enqueues one task per
// batch; it reacts to batch completions through events rather than polling,
// paces runs (sleep between batches, rows per second), ends runs, triggers
// active flows by their runtime, and reconciles the queue with the store
// (a batch whose task vanished from Redis is enqueued again).
//
// Each background loop is a small type of its own, built by New and started
// by Run:
//
//	elector     leader.go     the leader lease: acquire, renew, release
//	planLoop    planloop.go   events, polls and wake-ups → runPlanner, flowTrigger
//	runPlanner  planner.go    start, plan, enqueue, pace and end one run
//	            health.go     hold a run's planning while its database is unhealthy
//	flowTrigger flows.go      start runs of active flows by their runtime
//	reconciler  reconcile.go  re-enqueue tasks the queue lost
//	rescuer     rescue.go     end the claims of workers whose heartbeat stopped
//	janitor     janitor.go    remove queue entries asynq cannot decode
//	flowsDir    flowsdir.go   apply a directory of flow spec files (every scheduler)
package scheduler

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/health"
	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/tracing"
	"github.com/dripflow/dripflow/pkg/worker"
)

// Scheduler plans and enqueues batches.
type Scheduler struct {
	cfg     Config
	log     *zap.Logger
	leading atomic.Bool

	elector    *elector
	loop       *planLoop
	reconciler *reconciler
	rescuer    *rescuer
	janitor    *janitor
}

// New validates cfg and returns a Scheduler.
func New(cfg Config) (*Scheduler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.RunDefaults.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if cfg.Resources == nil {
		cfg.Resources = engine.NewResources(cfg.DB, nil, cfg.Logger)
	}
	metrics.Register()
	log := cfg.Logger
	queue, err := tasks.NewClient(cfg.Redis, cfg.Tasks)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	env := engine.Env{DB: cfg.DB, Logger: log, Resources: cfg.Resources}
	wake := &wakeup{}
	planner := newRunPlanner(cfg.Store, queue, openPipeline(cfg.Registry, env), wake, log)
	planner.notify = newNotifier(cfg)
	planner.tracer = tracing.Tracer(cfg.TracerProvider)
	planner.health = &health.Checker{Open: health.ResourcesOpener(cfg.Resources), Timeout: cfg.HealthTimeout}
	planner.healthInterval = cfg.HealthInterval
	rec := &reconciler{store: cfg.Store, queue: queue, grace: cfg.ReconcileGrace, log: log, tracer: tracing.Tracer(cfg.TracerProvider)}
	s := &Scheduler{
		cfg: cfg,
		log: log,
		elector: &elector{rdb: cfg.Redis, key: cfg.LeaderKey, id: cfg.ID,
			token: cfg.ID + ":" + strconv.FormatInt(time.Now().UnixNano(), 36), ttl: cfg.LeaderTTL, log: log},
		reconciler: rec,
		rescuer: &rescuer{store: cfg.Store, workers: worker.NewPresence(cfg.Redis, cfg.PresenceKey),
			requeue: rec.requeue, settle: planner.advance, log: log},
		janitor: &janitor{queue: queue, log: log},
	}
	s.loop = &planLoop{
		store:   cfg.Store,
		events:  cfg.Events,
		poll:    cfg.PollInterval,
		wake:    wake,
		planner: planner,
		flows: &flowTrigger{store: cfg.Store, jobs: cfg.Registry, env: env, wake: wake, log: log,
			runs: &control.Controller{Store: cfg.Store, Registry: cfg.Registry, Events: cfg.Events, Defaults: cfg.RunDefaults, TracerProvider: cfg.TracerProvider}},
		reconcileNow: func(ctx context.Context, r store.Run) { rec.reconcileRun(ctx, r, true) },
		metrics:      passMetrics{queue: queue},
		log:          log,
	}
	return s, nil
}

// Leading reports whether this scheduler holds the leader lease.
func (s *Scheduler) Leading() bool { return s.leading.Load() }

// Run competes for leadership and, while leader, schedules, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.cfg.Registry.Sync(ctx, s.cfg.Store); err != nil {
		return err
	}
	s.log.Info("scheduler started", zap.String("scheduler", s.cfg.ID))
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.cfg.FlowsDir != "" {
		d := newFlowsDir(s.cfg.FlowsDir, s.cfg.FlowsDirInterval, s.cfg.Store, s.log)
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wg.Go(func() { d.run(dctx) })
	}
	s.elector.run(ctx, s.lead)
	return nil
}

// lead runs the leader's loops until ctx ends (the lease was lost or Run's
// context ended).
func (s *Scheduler) lead(ctx context.Context) {
	s.setLeading(true)
	defer s.setLeading(false)
	// The queue is cleaned before the first pass, so nothing undecodable
	// stands in its way.
	s.janitor.clean(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { every(ctx, s.cfg.JanitorInterval, s.janitor.clean) })
	wg.Go(func() { every(ctx, s.cfg.ReconcileInterval, s.reconciler.reconcile) })
	wg.Go(func() { every(ctx, s.cfg.WorkerCheckInterval, s.rescuer.rescue) })
	defer s.loop.planner.notify.lead(ctx)()
	s.loop.run(ctx)
	wg.Wait()
}

func (s *Scheduler) setLeading(v bool) {
	s.leading.Store(v)
	exportLeading(v)
}
