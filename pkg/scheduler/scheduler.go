// Package scheduler turns runs into batches. The leader among any number of
// schedulers (a lease in Redis) starts runs when their time comes, plans each
// running run's key ranges lazily — at most max_in_flight batches of a run
// queued or running, the first one at once — and enqueues one task per
// batch; it reacts to batch completions through events rather than polling,
// paces runs (sleep between batches, rows per second), ends runs, triggers
// active flows by their runtime, and reconciles the queue with the store
// (a batch whose task vanished from Redis is enqueued again).
package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/cfgutil"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// Defaults of Config.
const (
	// PollIntervalDefault is how often every active run is looked at even
	// without events.
	PollIntervalDefault = time.Second
	// ReconcileIntervalDefault is how often the queue is checked against
	// the store.
	ReconcileIntervalDefault = 10 * time.Second
	// ReconcileGraceDefault is how old an enqueued batch must be before its
	// missing task counts as lost.
	ReconcileGraceDefault = 10 * time.Second
	// LeaderKeyDefault is the Redis key of the leader lease.
	LeaderKeyDefault = "dripflow:scheduler:leader"
	// LeaderTTLDefault is the leader lease's lifetime.
	LeaderTTLDefault = 5 * time.Second
	// WorkerCheckIntervalDefault is how often the leader looks for workers
	// whose heartbeat stopped.
	WorkerCheckIntervalDefault = time.Second
	// JanitorIntervalDefault is how often the leader removes queue entries
	// asynq cannot decode.
	JanitorIntervalDefault = time.Minute
	// FlowsDirIntervalDefault is how often Config.FlowsDir is checked for
	// changed files.
	FlowsDirIntervalDefault = 3 * time.Second
)

// Config configures a scheduler. Zero values mean defaults (see
// WithDefaults); negative durations are errors.
type Config struct {
	Store    store.Store
	Redis    redis.UniversalClient
	DB       *gorm.DB         // the application database (for planning)
	Registry *engine.Registry // default engine.DefaultRegistry
	Events   *events.Bus      // default events.New(Redis, "")
	Tasks    tasks.Config
	// Resources are the named connections and shared clients flows'
	// sources plan with; default only DB.
	Resources *engine.Resources
	// PollInterval is how often every active run is looked at even without
	// events; default PollIntervalDefault.
	PollInterval time.Duration
	// ReconcileInterval is how often the queue is checked against the
	// store; default ReconcileIntervalDefault. ReconcileGrace is how old an
	// enqueued batch must be before its missing task counts as lost;
	// default ReconcileGraceDefault.
	ReconcileInterval time.Duration
	ReconcileGrace    time.Duration
	// PresenceKey is the Redis key of the workers' registry (see
	// worker.Presence); default worker.DefaultPresenceKey. Every
	// WorkerCheckInterval (default 1s) the leader looks for workers whose
	// heartbeat stopped and ends their claims, so their batches run again
	// at once rather than after their claim lease.
	PresenceKey         string
	WorkerCheckInterval time.Duration
	// JanitorInterval is how often the leader removes queue entries asynq
	// cannot decode (see tasks.Client.CleanQueue); default 1m.
	JanitorInterval time.Duration
	// LeaderKey and LeaderTTL define the leader lease; defaults
	// LeaderKeyDefault and LeaderTTLDefault.
	LeaderKey string
	LeaderTTL time.Duration
	// FlowsDir, when set, is a directory of flow spec files (*.yaml,
	// *.yml, *.json) the scheduler creates and updates flows from, at start
	// and whenever a file changes (checked every FlowsDirInterval, default
	// FlowsDirIntervalDefault). Every scheduler may watch it: applying a
	// file that matches its flow's latest version changes nothing. A
	// removed file does not delete its flow.
	FlowsDir         string
	FlowsDirInterval time.Duration
	ID               string      // default host:pid
	Logger           *zap.Logger // default zap.NewNop()

	// TracerProvider traces the runs it creates and the batches it
	// enqueues (see trace.go); nil: tracing off.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns c with every zero field set to its default. It leaves
// negative values alone, for validation to reject.
func (c Config) WithDefaults() Config {
	if c.Registry == nil {
		c.Registry = engine.DefaultRegistry
	}
	if c.Events == nil && c.Redis != nil {
		c.Events = events.New(c.Redis, "")
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	if c.ReconcileGrace == 0 {
		c.ReconcileGrace = ReconcileGraceDefault
	}
	if c.LeaderKey == "" {
		c.LeaderKey = LeaderKeyDefault
	}
	if c.LeaderTTL == 0 {
		c.LeaderTTL = LeaderTTLDefault
	}
	if c.WorkerCheckInterval == 0 {
		c.WorkerCheckInterval = WorkerCheckIntervalDefault
	}
	if c.JanitorInterval == 0 {
		c.JanitorInterval = JanitorIntervalDefault
	}
	if c.FlowsDirInterval == 0 {
		c.FlowsDirInterval = FlowsDirIntervalDefault
	}
	if c.ID == "" {
		c.ID = cfgutil.ProcessID()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate() error {
	if c.Store == nil || c.Redis == nil {
		return errors.New("scheduler: Store and Redis are required")
	}
	if err := cmp.Or(
		cfgutil.NotNegative("PollInterval", c.PollInterval),
		cfgutil.NotNegative("ReconcileInterval", c.ReconcileInterval),
		cfgutil.NotNegative("ReconcileGrace", c.ReconcileGrace),
		cfgutil.NotNegative("LeaderTTL", c.LeaderTTL),
		cfgutil.NotNegative("WorkerCheckInterval", c.WorkerCheckInterval),
		cfgutil.NotNegative("JanitorInterval", c.JanitorInterval),
		cfgutil.NotNegative("FlowsDirInterval", c.FlowsDirInterval),
	); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Scheduler plans and enqueues batches.
type Scheduler struct {
	cfg      Config
	log      *zap.Logger
	tasks    *tasks.Client
	ctl      *control.Controller
	presence *worker.Presence

	mu      sync.Mutex
	pipes   map[int64]engine.Pipeline
	nextAt  map[int64]time.Time // pacing: when the run's next batch may start
	counted map[int64]bool
	idle    map[string]time.Time // flows whose last tick found nothing to move
	flowErr map[string]string    // flows' latest trigger error, logged once
	wakeAt  time.Time
	leading bool
}

// New validates cfg and returns a Scheduler.
func New(cfg Config) (*Scheduler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Resources == nil {
		cfg.Resources = engine.NewResources(cfg.DB, nil, cfg.Logger)
	}
	metrics.Register()
	return &Scheduler{
		cfg:      cfg,
		log:      cfg.Logger,
		tasks:    tasks.NewClient(cfg.Redis, cfg.Tasks),
		ctl:      &control.Controller{Store: cfg.Store, Registry: cfg.Registry, Events: cfg.Events, TracerProvider: cfg.TracerProvider},
		presence: worker.NewPresence(cfg.Redis, cfg.PresenceKey),
		pipes:    map[int64]engine.Pipeline{},
		nextAt:   map[int64]time.Time{},
		counted:  map[int64]bool{},
		idle:     map[string]time.Time{},
		flowErr:  map[string]string{},
	}, nil
}

// Leading reports whether this scheduler holds the leader lease.
func (s *Scheduler) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leading
}

// Run competes for leadership and, while leader, schedules, until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := s.cfg.Registry.Sync(ctx, s.cfg.Store); err != nil {
		return err
	}
	l := &leader{rdb: s.cfg.Redis, key: s.cfg.LeaderKey, token: s.cfg.ID + ":" + strconv.FormatInt(time.Now().UnixNano(), 36), ttl: s.cfg.LeaderTTL}
	s.log.Info("scheduler started", zap.String("scheduler", s.cfg.ID))
	if s.cfg.FlowsDir != "" {
		d := newFlowsDir(s.cfg.FlowsDir, s.cfg.FlowsDirInterval, s.cfg.Store, s.log)
		done := make(chan struct{})
		dctx, cancel := context.WithCancel(ctx)
		go func() { defer close(done); d.run(dctx) }()
		defer func() { cancel(); <-done }()
	}
	for {
		ok, err := l.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("acquire leader lease", zap.Error(err))
		}
		if ok {
			s.log.Info("leading", zap.String("scheduler", s.cfg.ID))
			s.lead(ctx, l)
			s.log.Info("no longer leading", zap.String("scheduler", s.cfg.ID))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.LeaderTTL / 5):
		}
	}
}

// lead schedules until the lease is lost or ctx ends.
func (s *Scheduler) lead(ctx context.Context, l *leader) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.setLeading(true)
	defer s.setLeading(false)
	defer l.release(context.WithoutCancel(ctx))

	go func() {
		defer cancel()
		t := time.NewTicker(s.cfg.LeaderTTL / 3)
		defer t.Stop()
		lastOK := time.Now()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				ok, err := l.renew(lctx)
				if ok {
					lastOK = time.Now()
					continue
				}
				if err == nil || time.Since(lastOK) > s.cfg.LeaderTTL*2/3 {
					s.log.Warn("leader lease lost", zap.Error(err))
					return
				}
			}
		}
	}()

	changed := s.cfg.Events.Subscribe(lctx)
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	reconcile := time.NewTicker(s.cfg.ReconcileInterval)
	defer reconcile.Stop()
	workers := time.NewTicker(s.cfg.WorkerCheckInterval)
	defer workers.Stop()
	janitor := time.NewTicker(s.cfg.JanitorInterval)
	defer janitor.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()

	s.cleanQueue(lctx)
	s.pass(lctx)
	for {
		select {
		case <-lctx.Done():
			return
		case ev, ok := <-changed:
			if !ok {
				// Subscription ended (Redis gone); keep going on polls.
				changed = nil
				continue
			}
			// Coalesce a burst of events into one look at each run.
			resumed := map[int64]bool{ev.RunID: ev.Resumed}
		drain:
			for {
				select {
				case ev, ok := <-changed:
					if !ok {
						changed = nil
						break drain
					}
					resumed[ev.RunID] = resumed[ev.RunID] || ev.Resumed
				default:
					break drain
				}
			}
			for id, r := range resumed {
				s.handleRun(lctx, id, r)
			}
		case <-poll.C:
			s.pass(lctx)
		case <-reconcile.C:
			s.reconcile(lctx)
		case <-workers.C:
			s.rescueDeadWorkers(lctx)
		case <-janitor.C:
			s.cleanQueue(lctx)
		case <-wake.C:
			s.pass(lctx)
		}
		if d := s.nextWake(); d > 0 {
			wake.Reset(d)
		}
	}
}

func (s *Scheduler) setLeading(v bool) {
	s.mu.Lock()
	s.leading = v
	s.mu.Unlock()
	if v {
		metrics.SchedulerLeader.Set(1)
	} else {
		metrics.SchedulerLeader.Set(0)
	}
}

// wakeNoLaterThan asks for a pass at t.
func (s *Scheduler) wakeNoLaterThan(t time.Time) {
	s.mu.Lock()
	if s.wakeAt.IsZero() || t.Before(s.wakeAt) {
		s.wakeAt = t
	}
	s.mu.Unlock()
}

func (s *Scheduler) nextWake() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wakeAt.IsZero() {
		return 0
	}
	d := time.Until(s.wakeAt)
	s.wakeAt = time.Time{}
	return max(d, time.Millisecond)
}

// pass looks at every active run and every active flow.
func (s *Scheduler) pass(ctx context.Context) {
	start := time.Now()
	defer func() { metrics.SchedulerPass.Observe(metrics.Since(start)) }()
	active := map[store.RunState]float64{}
	defer func() {
		for _, st := range []store.RunState{store.RunScheduled, store.RunRunning, store.RunCancelling} {
			metrics.RunsActive.WithLabelValues(string(st)).Set(active[st])
		}
	}()
	if qs, err := s.tasks.Stats(ctx); err == nil {
		for state, n := range map[string]int{"pending": qs.Pending, "active": qs.Active, "scheduled": qs.Scheduled,
			"retry": qs.Retry, "archived": qs.Archived, "completed": qs.Completed} {
			metrics.QueueDepth.WithLabelValues(state).Set(float64(n))
		}
	}
	f := store.RunFilter{States: []store.RunState{store.RunScheduled, store.RunRunning, store.RunCancelling}, Limit: store.MaxLimit}
	for {
		page, err := s.cfg.Store.ListRuns(ctx, f)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("list active runs", zap.Error(err))
			}
			return
		}
		for _, r := range page.Items {
			active[r.State]++
			if r.State == store.RunRunning {
				ratio := 0.0
				if r.Total > 0 {
					ratio = min(1, float64(r.RowsRead)/float64(r.Total))
				}
				metrics.RunProgress.WithLabelValues(strconv.FormatInt(r.ID, 10), r.Definition).Set(ratio)
			}
			s.advance(ctx, r)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	s.triggerFlows(ctx)
}

// handleRun reacts to an event about run id.
func (s *Scheduler) handleRun(ctx context.Context, id int64, resumed bool) {
	r, err := s.cfg.Store.GetRun(ctx, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			s.log.Warn("load run", zap.Int64("run", id), zap.Error(err))
		}
		return
	}
	s.advance(ctx, r)
	if resumed && r.State == store.RunRunning {
		// A resumed or retried run: its enqueued batches lost their tasks
		// while it was not running (workers revoked them).
		s.reconcileRun(ctx, r, true)
	}
}

// advance moves one run forward as far as it can go now.
func (s *Scheduler) advance(ctx context.Context, r store.Run) {
	log := s.log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition))
	var err error
	switch r.State {
	case store.RunScheduled:
		if r.StartAt != nil && r.StartAt.After(time.Now()) {
			s.wakeNoLaterThan(*r.StartAt)
			return
		}
		if r, err = s.cfg.Store.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
			log.Warn("start run", zap.Error(err))
			return
		}
		log.Info("run started")
		err = s.fill(ctx, r, log)
	case store.RunRunning:
		err = s.fill(ctx, r, log)
	case store.RunCancelling:
		// In-flight batches finish; one whose worker died (its lease
		// expired, nobody may claim it again in a cancelling run) is
		// cancelled, so the run does not stay cancelling for good.
		var got store.Run
		if got, err = s.cfg.Store.CancelExpiredBatches(ctx, r.ID); err == nil && got.State == store.RunCancelled {
			if n := got.BatchesCancelled - r.BatchesCancelled; n > 0 {
				log.Warn("cancelled batches whose worker stopped", zap.Int64("batches", n))
			}
			log.Info("run cancelled")
			s.forget(r.ID)
		}
	default:
		if r.State.Terminal() {
			s.forget(r.ID)
		}
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
		log.Warn("schedule run", zap.Error(err))
	}
}

func (s *Scheduler) forget(id int64) {
	metrics.RunProgress.DeletePartialMatch(map[string]string{"run": strconv.FormatInt(id, 10)})
	s.mu.Lock()
	delete(s.pipes, id)
	delete(s.nextAt, id)
	delete(s.counted, id)
	s.mu.Unlock()
}

func (s *Scheduler) pipeline(ctx context.Context, r store.Run) (engine.Pipeline, error) {
	s.mu.Lock()
	p, ok := s.pipes[r.ID]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	job, err := s.cfg.Registry.Resolve(ctx, r.Definition, r.SpecVersion)
	if err != nil {
		return nil, err
	}
	p, err = job.Open(ctx, engine.Env{DB: s.cfg.DB, Logger: s.log, Resources: s.cfg.Resources}, r.Params)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.pipes[r.ID] = p
	s.mu.Unlock()
	return p, nil
}

// fill keeps the run's window of queued batches full and ends the run when
// everything is done.
func (s *Scheduler) fill(ctx context.Context, r store.Run, log *zap.Logger) error {
	pipe, err := s.pipeline(ctx, r)
	var fe *flows.FieldError
	if errors.Is(err, engine.ErrUnknownConnection) || errors.As(err, &fe) {
		// A connection the flow names is not configured here, or the
		// run's spec version does not compile in this binary (a connector
		// or transform it does not link): waiting will not bring it, so
		// the run ends saying what is wrong.
		msg := fmt.Sprintf("cannot plan: %v", err)
		if _, terr := s.cfg.Store.TransitionRun(ctx, r.ID, store.RunFailed, &store.TransitionOptions{Error: msg}); terr != nil {
			return errors.Join(err, terr)
		}
		log.Warn("run failed: cannot plan", zap.Error(err))
		s.forget(r.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if snap := s.countOnce(ctx, r, pipe, log); snap != nil && r.BatchesTotal() == 0 {
		// The first batch waits until the count has fixed the instant it
		// counts at, so a backfill that moves records out of its own scope
		// is still counted whole.
		select {
		case <-snap:
		case <-time.After(snapshotWait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.Options.ErrorBudget > 0 && r.BatchesFailed >= int64(r.Options.ErrorBudget) {
		msg := fmt.Sprintf("stopped: %d batches failed, error budget is %d; fix the cause and retry the failed batches", r.BatchesFailed, r.Options.ErrorBudget)
		if _, err := s.cfg.Store.TransitionRun(ctx, r.ID, store.RunFailed, &store.TransitionOptions{Error: msg}); err != nil {
			return err
		}
		log.Warn("run failed: error budget exceeded", zap.Int64("failed_batches", r.BatchesFailed))
		s.forget(r.ID)
		return nil
	}
	free := int64(r.Options.MaxInFlight) - r.BatchesEnqueued - r.BatchesRunning
	// Batches planned (or retried) but not yet enqueued go first.
	if free > 0 && r.BatchesPending > 0 {
		page, err := s.cfg.Store.ListBatches(ctx, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchPending}, Limit: int(min(free, store.MaxLimit))})
		if err != nil {
			return err
		}
		if ok, err := s.enqueueAll(ctx, r, page.Items); err != nil || !ok {
			return err // or paced: wait for the next slot
		}
		free -= int64(len(page.Items))
	}
	for free > 0 && !r.PlanDone {
		n := min(free, 16)
		if r.BatchesTotal() == 0 {
			n = 1 // the first batch starts before the rest is planned
		}
		bs, next, err := s.plan(ctx, r, pipe, int(n))
		if err != nil {
			return err
		}
		r = next
		if ok, err := s.enqueueAll(ctx, r, bs); err != nil || !ok {
			return err
		}
		free -= int64(len(bs))
		if len(bs) == 0 {
			break
		}
	}
	// Only a fully planned run can end; its fresh counters say whether
	// anything is still in flight.
	if r.PlanDone {
		if r, err = s.cfg.Store.GetRun(ctx, r.ID); err != nil {
			return err
		}
	}
	if r.State == store.RunRunning && r.PlanDone && r.InFlight() == 0 {
		return s.finish(ctx, r, pipe, log)
	}
	return nil
}

// plan appends up to n batches after the run's plan cursor.
func (s *Scheduler) plan(ctx context.Context, r store.Run, pipe engine.Pipeline, n int) ([]store.Batch, store.Run, error) {
	lo := r.PlanCursor
	if lo == "" && r.BatchesTotal() == 0 && pipe.Incremental() {
		fs, err := s.cfg.Store.GetFlow(ctx, r.Definition)
		if err != nil {
			return nil, r, fmt.Errorf("read watermark of %s: %w", r.Definition, err)
		}
		lo = pipe.Start(fs.Watermark)
	}
	// An unpaced run's batches are planned enqueued: their tasks go on the
	// queue right after, so the store is written once per step rather than
	// once more per batch. A paced run's wait their turn as pending.
	step := store.PlanStep{From: r.PlanCursor, To: r.PlanCursor, Enqueue: pacing(r) == 0}
	limit := 0
	if pl, ok := pipe.(engine.PlanLimiter); ok {
		limit = pl.MaxBatches()
	}
	for len(step.Batches) < n {
		if limit > 0 && r.BatchesTotal()+int64(len(step.Batches)) >= int64(limit) {
			// An unbounded source's run ends here; the next run goes on
			// from its last position.
			step.Done = true
			break
		}
		hi, more, ok, err := pipe.Next(ctx, lo, r.Options.BatchSize)
		if err != nil {
			return nil, r, fmt.Errorf("plan batch after %q: %w", lo, err)
		}
		if !ok {
			step.Done = true
			break
		}
		step.Batches = append(step.Batches, store.KeyRange{Lo: lo, Hi: hi})
		step.To, lo = hi, hi
		if !more {
			step.Done = true
			break
		}
	}
	bs, err := s.cfg.Store.AppendBatches(ctx, r.ID, step)
	if err != nil {
		return nil, r, err
	}
	r.PlanCursor, r.PlanDone = step.To, step.Done
	if step.Enqueue {
		r.BatchesEnqueued += int64(len(bs))
	} else {
		r.BatchesPending += int64(len(bs))
	}
	return bs, r, nil
}

// enqueueParallel is how many batches of one run the scheduler enqueues at
// once when the run is not paced.
const enqueueParallel = 16

// enqueueAll enqueues bs as enqueue does each. It returns false when the
// run's pacing stopped it before the last one. An unpaced run's batches are
// enqueued side by side: one after the other, the two round trips each takes
// (the store, then the queue) would bound the run's throughput.
func (s *Scheduler) enqueueAll(ctx context.Context, r store.Run, bs []store.Batch) (bool, error) {
	if pacing(r) > 0 || len(bs) < 2 {
		for _, b := range bs {
			if ok, err := s.enqueue(ctx, r, b); err != nil || !ok {
				return ok, err
			}
		}
		return true, nil
	}
	sem := make(chan struct{}, enqueueParallel)
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = s.enqueue(ctx, r, b)
		}()
	}
	wg.Wait()
	return true, errors.Join(errs...)
}

// pacing is the least time between two batch starts of the run (0: none).
func pacing(r store.Run) time.Duration {
	gap := r.Options.Sleep
	if r.Options.RowsPerSecond > 0 {
		gap = max(gap, time.Duration(float64(r.Options.BatchSize)/float64(r.Options.RowsPerSecond)*float64(time.Second)))
	}
	return gap
}

// paceTolerance is how late a paced batch start may be made up: a gap, at
// least 250 ms, at most 1 s, so over any 10 s the rows started stay within
// a few per cent of rows_per_second.
func paceTolerance(gap time.Duration) time.Duration {
	return min(max(gap, 250*time.Millisecond), time.Second)
}

// enqueue moves a pending batch to enqueued and puts its task on the queue,
// unless the run's pacing says not yet (then it returns false).
func (s *Scheduler) enqueue(ctx context.Context, r store.Run, b store.Batch) (bool, error) {
	if gap := pacing(r); gap > 0 {
		now := time.Now()
		s.mu.Lock()
		at := s.nextAt[r.ID]
		if now.Before(at) {
			s.mu.Unlock()
			s.wakeNoLaterThan(at)
			return false, nil
		}
		// The next start is due a gap after this one was due, not after
		// the scheduler got to it: a pass that comes late does not slow
		// the run down. Lateness is made up within paceTolerance (a burst
		// of at most that many rows' worth); a run that was held back
		// longer (paused, at max_in_flight) starts afresh from now.
		due := at
		if due.IsZero() || due.Before(now.Add(-paceTolerance(gap))) {
			due = now
		}
		s.nextAt[r.ID] = due.Add(gap)
		s.mu.Unlock()
		s.wakeNoLaterThan(due.Add(gap))
	}
	ctx, span := s.traceEnqueue(ctx, r, b)
	defer span.End()
	if b.State == store.BatchPending {
		if _, err := s.cfg.Store.EnqueueBatch(ctx, r.ID, b.Seq); err != nil {
			if errors.Is(err, store.ErrIllegalTransition) {
				return true, nil // someone else enqueued or cancelled it
			}
			return false, err
		}
	}
	return true, s.enqueueTask(ctx, r, b)
}

func (s *Scheduler) enqueueTask(ctx context.Context, r store.Run, b store.Batch) error {
	_, err := s.tasks.EnqueueBatch(ctx, tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries, Definition: r.Definition, Trace: traceparent(ctx)},
		tasks.EnqueueOptions{MaxAttempts: r.Options.MaxAttempts, Timeout: r.Options.BatchTimeout})
	if err == nil && b.Retries > 0 {
		// A retried batch's earlier task (archived when it failed for
		// good) is superseded: remove it, so the queue's view does not
		// show a failure of a batch that has moved on. Best effort; the
		// store refuses a stale task anyway.
		old := tasks.BatchPayload{RunID: r.ID, Seq: b.Seq, Retry: b.Retries - 1}
		if derr := s.tasks.DeleteBatchTask(ctx, old); derr != nil {
			s.log.Debug("remove the superseded task of a retried batch", zap.String("task", old.TaskID()), zap.Error(derr))
		}
	}
	return err
}

// finish ends a run whose batches are all done.
func (s *Scheduler) finish(ctx context.Context, r store.Run, pipe engine.Pipeline, log *zap.Logger) error {
	defer s.forget(r.ID)
	if r.BatchesFailed > 0 {
		msg := fmt.Sprintf("%d of %d batches failed; fix the cause and retry the failed batches", r.BatchesFailed, r.BatchesTotal())
		if _, err := s.cfg.Store.TransitionRun(ctx, r.ID, store.RunFailed, &store.TransitionOptions{Error: msg}); err != nil {
			return err
		}
		log.Warn("run failed", zap.Int64("failed_batches", r.BatchesFailed))
		return nil
	}
	if pipe.Incremental() && r.BatchesTotal() > 0 {
		first, err := s.cfg.Store.GetBatch(ctx, r.ID, 1)
		if err != nil {
			return err
		}
		if _, err := s.cfg.Store.AdvanceWatermark(ctx, r.Definition, first.Lo, r.PlanCursor); err != nil {
			msg := fmt.Sprintf("could not advance the watermark from %s to %s: %v", first.Lo, r.PlanCursor, err)
			_, terr := s.cfg.Store.TransitionRun(ctx, r.ID, store.RunFailed, &store.TransitionOptions{Error: msg})
			return errors.Join(err, terr)
		}
	}
	if _, err := s.cfg.Store.TransitionRun(ctx, r.ID, store.RunSucceeded, nil); err != nil {
		return err
	}
	log.Info("run succeeded", zap.Int64("rows", r.RowsRead), zap.Int64("batches", r.BatchesSucceeded))
	return nil
}

// snapshotWait bounds how long a run's first batch waits for its count's
// snapshot.
const snapshotWait = time.Second

// countOnce counts the run's records in the background, once. The channel
// it returns (nil when it starts no count) is closed once the count has
// fixed the instant it counts at (keyset.OnSnapshot) or has ended.
func (s *Scheduler) countOnce(ctx context.Context, r store.Run, pipe engine.Pipeline, log *zap.Logger) <-chan struct{} {
	if r.Total >= 0 || pipe.Incremental() {
		return nil
	}
	s.mu.Lock()
	done := s.counted[r.ID]
	s.counted[r.ID] = true
	s.mu.Unlock()
	if done {
		return nil
	}
	snap := make(chan struct{})
	var once sync.Once
	taken := func() { once.Do(func() { close(snap) }) }
	go func() {
		defer taken()
		n, est, err := pipe.Count(keyset.OnSnapshot(ctx, taken))
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, engine.ErrCannotCount) {
				log.Warn("count records", zap.Error(err))
			}
			return
		}
		if err := s.cfg.Store.SetRunTotal(context.WithoutCancel(ctx), r.ID, n, est); err != nil {
			log.Warn("record total", zap.Error(err))
		}
	}()
	return snap
}
