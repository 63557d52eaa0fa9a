// Package worker runs batches: it is an asynq server whose handler claims a
// batch in the store, runs the job's pipeline over the batch's key range, and
// records the batch's checkpoint — in the same transaction as the data write
// when the job writes to the store's database.
package worker

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/cfgutil"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/tracing"
)

// TxStore is a store that can record a checkpoint inside a caller's
// transaction (the SQL store).
type TxStore interface {
	DB() *gorm.DB
	CompleteBatchTx(ctx context.Context, tx *gorm.DB, runID, seq int64, token string, r store.Result) (store.Batch, error)
}

// Defaults of Config.
const (
	// ClaimLeaseDefault is how long a batch's claim lives without a
	// heartbeat.
	ClaimLeaseDefault = time.Minute
	// PollIntervalDefault is how often an idle worker looks for tasks.
	PollIntervalDefault = tasks.PollIntervalDefault
	// ShutdownTimeoutDefault is how long a stopping worker waits for
	// running batches.
	ShutdownTimeoutDefault = tasks.ShutdownTimeoutDefault
)

// Config configures a worker. Zero values mean defaults (see
// WithDefaults); negative durations and counts are errors.
type Config struct {
	Store store.Store
	Redis redis.UniversalClient
	DB    *gorm.DB // the application database jobs read and write
	// Resources are the named connections and shared clients flows'
	// connectors are built with; default only DB.
	Resources *engine.Resources
	Registry  *engine.Registry // default engine.DefaultRegistry
	Events    *events.Bus      // default events.New(Redis, "")
	Queue     string           // default tasks.DefaultQueue
	// Concurrency is how many batches run at once; default the CPU count.
	Concurrency int
	// PollInterval is how often an idle worker looks for tasks; default
	// PollIntervalDefault (see tasks.ServerConfig).
	PollInterval time.Duration
	// ShutdownTimeout is how long a stopping worker waits for running
	// batches; default ShutdownTimeoutDefault.
	ShutdownTimeout time.Duration
	// ClaimLease is how long a batch's claim lives without a heartbeat;
	// a worker extends it every third of that while the batch runs. A
	// batch whose worker died is claimable again after it. Default
	// ClaimLeaseDefault.
	ClaimLease time.Duration
	// HeartbeatInterval is how often the worker records that it is alive
	// (and which batches it holds) in the Presence registry; default
	// DefaultHeartbeatInterval. HeartbeatTTL is how long after its last
	// beat it counts as dead and the scheduler rescues its batches without
	// waiting for their claim leases; default DefaultHeartbeatTTL, at least
	// twice the interval.
	HeartbeatInterval time.Duration
	HeartbeatTTL      time.Duration
	// PresenceKey is the Redis key of the workers' registry; default
	// DefaultPresenceKey. The scheduler and the web UI must use the same.
	PresenceKey string
	// ID names this worker in batch records and in the registry; default
	// host:pid. Two live workers must not share one.
	ID     string
	Logger *zap.Logger // default zap.NewNop()
	// TracerProvider traces every batch (see trace.go); nil: tracing off.
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
	if c.Queue == "" {
		c.Queue = tasks.DefaultQueue
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.NumCPU()
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if c.ClaimLease == 0 {
		c.ClaimLease = ClaimLeaseDefault
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = DefaultHeartbeatTTL
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
		return errors.New("worker: Store and Redis are required")
	}
	if err := cmp.Or(
		cfgutil.NotNegative("Concurrency", c.Concurrency),
		cfgutil.NotNegative("PollInterval", c.PollInterval),
		cfgutil.NotNegative("ShutdownTimeout", c.ShutdownTimeout),
		cfgutil.NotNegative("ClaimLease", c.ClaimLease),
		cfgutil.NotNegative("HeartbeatInterval", c.HeartbeatInterval),
		cfgutil.NotNegative("HeartbeatTTL", c.HeartbeatTTL),
	); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if c.HeartbeatTTL < 2*c.HeartbeatInterval {
		return fmt.Errorf("worker: HeartbeatTTL %s must be at least twice HeartbeatInterval %s", c.HeartbeatTTL, c.HeartbeatInterval)
	}
	return nil
}

// Worker processes batch tasks.
type Worker struct {
	cfg     Config
	log     *zap.Logger
	reg     *engine.Registry
	sameDB  bool
	txStore TxStore
	tracer  trace.Tracer // nil: tracing off

	notify   *notifier
	presence *Presence
	started  time.Time
	beatNow  chan struct{}

	mu    sync.Mutex
	pipes map[int64]openRun
	held  map[BatchRef]int
}

// openRun is a run whose pipeline this worker has opened.
type openRun struct {
	run  store.Run
	pipe engine.Pipeline
}

// New validates cfg and returns a Worker.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Resources == nil {
		cfg.Resources = engine.NewResources(cfg.DB, nil, cfg.Logger)
	}
	metrics.Register()
	w := &Worker{cfg: cfg, log: cfg.Logger, reg: cfg.Registry, pipes: map[int64]openRun{}, notify: newNotifier(cfg.Events),
		presence: NewPresence(cfg.Redis, cfg.PresenceKey), held: map[BatchRef]int{}, beatNow: make(chan struct{}, 1),
		tracer: tracing.Tracer(cfg.TracerProvider)}
	if ts, ok := cfg.Store.(TxStore); ok && cfg.DB != nil && sameDatabase(ts.DB(), cfg.DB) {
		w.sameDB, w.txStore = true, ts
	}
	return w, nil
}

// sameDatabase reports whether a and b share one connection pool. A nil
// handle (a job that writes elsewhere) shares none.
func sameDatabase(a, b *gorm.DB) bool {
	if a == nil || b == nil {
		return false
	}
	x, err1 := a.DB()
	y, err2 := b.DB()
	return err1 == nil && err2 == nil && x == y
}

// SameTransaction reports whether checkpoints commit in the data's
// transaction (the store and the jobs share one database handle).
func (w *Worker) SameTransaction() bool { return w.sameDB }

// Run processes batches until ctx ends, then drains.
func (w *Worker) Run(ctx context.Context) error {
	srv, err := tasks.NewServer(w.cfg.Redis, tasks.ServerConfig{
		Queue:           w.cfg.Queue,
		Concurrency:     w.cfg.Concurrency,
		PollInterval:    w.cfg.PollInterval,
		ShutdownTimeout: w.cfg.ShutdownTimeout,
		Logger:          w.log,
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	metrics.WorkerSlots.Set(float64(w.cfg.Concurrency))
	w.log.Info("worker started", zap.String("worker", w.cfg.ID), zap.Bool("same_transaction", w.sameDB))
	w.started = time.Now()
	stopBeating := w.beat(ctx)
	err = srv.Run(ctx, tasks.HandlerFunc(w.ProcessBatch))
	stopBeating()
	w.notify.wait()
	w.log.Info("worker stopped", zap.String("worker", w.cfg.ID))
	return err
}

// processBatch handles one batch task (ProcessBatch traces it).
func (w *Worker) processBatch(ctx context.Context, p tasks.BatchPayload, a tasks.Attempt) error {
	log := w.log.With(zap.Int64("run", p.RunID), zap.Int64("batch", p.Seq), zap.String("definition", p.Definition), zap.Int("attempt", a.Retried+1))
	// A run this worker has opened needs no reading per batch: what it
	// uses of it (definition, params) never changes, and its state is the
	// claim's to check.
	run, known := w.openedRun(p.RunID)
	if !known {
		var err error
		run, err = w.cfg.Store.GetRun(ctx, p.RunID)
		if errors.Is(err, store.ErrNotFound) {
			log.Warn("dropping task of an unknown run")
			return tasks.Revoke(err)
		}
		if err != nil {
			return fmt.Errorf("load run %d: %w", p.RunID, err)
		}
	}
	token := fmt.Sprintf("%s/%s/%d/%d", w.cfg.ID, a.TaskID, a.Retried, time.Now().UnixNano())
	claim := w.step(ctx, tracing.SpanClaim)
	b, err := w.cfg.Store.ClaimBatch(claim.ctx, p.RunID, p.Seq, store.Claim{Worker: w.cfg.ID, Token: token, Lease: w.cfg.ClaimLease})
	claim.end(err)
	if errors.Is(err, store.ErrRunNotRunning) && known {
		// Which refusal it is depends on the run's current state.
		fresh, gerr := w.cfg.Store.GetRun(ctx, p.RunID)
		if gerr != nil {
			return fmt.Errorf("load run %d: %w", p.RunID, gerr)
		}
		run = fresh
	}
	switch {
	case store.IsFinished(err):
		// Already done (a redelivery, a replay) or cancelled: acknowledge.
		log.Debug("batch already finished")
		return nil
	case errors.Is(err, store.ErrRunNotRunning) && run.State == store.RunFailed:
		// A failed batch's task replayed from the queue's archive (asynqmon's
		// "run" button): treat it as "retry this batch", so the store and
		// the queue stay consistent whichever one people use.
		return tasks.Revoke(w.replay(ctx, run, p.Seq, log))
	case errors.Is(err, store.ErrRunNotRunning), errors.Is(err, store.ErrBatchClaimed), errors.Is(err, store.ErrNotFound):
		// The store decides: the scheduler re-enqueues the batch when its
		// run runs again, or when the live claim's lease expires.
		log.Debug("batch not claimable now", zap.Error(err))
		return tasks.Revoke(err)
	case err != nil:
		return fmt.Errorf("claim batch %s: %w", store.BatchID(p.RunID, p.Seq), err)
	}
	log = log.With(zap.String("definition", run.Definition))
	w.traceClaimed(ctx, b)
	if b.EnqueuedAt != nil && b.StartedAt != nil && b.Attempts == 1 {
		metrics.QueueWait.WithLabelValues(run.Definition).Observe(b.StartedAt.Sub(*b.EnqueuedAt).Seconds())
	}

	defer w.hold(b)()
	stopHeartbeat := w.heartbeat(ctx, b, token, log)
	start := time.Now()
	pctx, stopTimeout := batchContext(ctx, run.Options.BatchTimeout)
	res, perr := w.process(pctx, run, b, token)
	stopTimeout()
	stopHeartbeat()
	res.Duration = time.Since(start)
	if perr != nil && errors.Is(context.Cause(pctx), errBatchTimeout) {
		perr = fmt.Errorf("batch timeout %s exceeded: %w", run.Options.BatchTimeout, perr)
	}

	metrics.BatchDuration.WithLabelValues(run.Definition).Observe(res.Duration.Seconds())
	if perr == nil {
		w.ack(ctx, b, log)
		metrics.Batches.WithLabelValues(run.Definition, "succeeded").Inc()
		metrics.Rows.WithLabelValues(run.Definition, "read").Add(float64(res.RowsRead))
		metrics.Rows.WithLabelValues(run.Definition, "written").Add(float64(res.RowsWritten))
		metrics.Rows.WithLabelValues(run.Definition, "skipped").Add(float64(res.RowsSkipped))
		w.notify.changed(p.RunID)
		log.Debug("batch succeeded", zap.Int64("rows", res.RowsRead), zap.Duration("duration", res.Duration))
		return nil
	}
	if errors.Is(perr, store.ErrStaleClaim) || store.IsFinished(perr) {
		// Another attempt took the batch over while this one ran long; its
		// result counts, this one's was rolled back (or is idempotent).
		log.Warn("batch taken over by another attempt", zap.Error(perr))
		return nil
	}
	final := a.Last()
	var stack string
	var pe *panicError
	if errors.As(perr, &pe) {
		stack = pe.stack
	}
	// Record the failure even if the task's context is done (timeout,
	// shutdown), so the batch does not look claimed until its lease expires.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	failed, ferr := w.cfg.Store.FailBatch(fctx, p.RunID, p.Seq, token, store.Failure{
		Message: perr.Error(), Stack: stack, Final: final, Duration: res.Duration,
	})
	if ferr != nil && !errors.Is(ferr, store.ErrConflict) {
		log.Error("record batch failure", zap.Error(ferr))
	}
	if ferr == nil {
		w.noteFailure(fctx, run, failed, a.Retried+1, final, perr, log)
	}
	w.cfg.Events.RunChanged(fctx, p.RunID)
	outcome := "retried"
	if final {
		outcome = "failed"
	}
	metrics.Batches.WithLabelValues(run.Definition, outcome).Inc()
	log.Warn("batch failed", zap.Error(perr), zap.Bool("final", final))
	if final {
		return tasks.Final(perr)
	}
	return perr
}

// slotBusy counts a worker slot as in use until the returned function is
// called (metrics.WorkerBusy, metrics.WorkerRunning). It measures what the
// batch rows cannot: a checkpoint written in the data's transaction is
// recorded before that transaction commits.
func slotBusy() (done func()) {
	start := time.Now()
	metrics.WorkerRunning.Inc()
	return func() {
		metrics.WorkerRunning.Dec()
		metrics.WorkerBusy.Add(time.Since(start).Seconds())
	}
}

// errBatchTimeout is the cause of a batch context whose run's batch
// timeout passed.
var errBatchTimeout = errors.New("batch timeout exceeded")

// batchContext bounds one attempt by the run's batch timeout (0: none), to
// the millisecond: the queue's own timeouts are whole seconds, and the
// queue is given none that could cut a batch short first.
func batchContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, errBatchTimeout)
}

// process runs the pipeline and records the checkpoint.
func (w *Worker) process(ctx context.Context, run store.Run, b store.Batch, token string) (res store.Result, err error) {
	pipe, err := w.pipeline(ctx, run)
	if err != nil {
		return res, err
	}
	if w.sameDB && sameDatabase(pipe.WritesTo(), w.txStore.DB()) {
		start := time.Now()
		var checkpoint step
		err = w.txStore.DB().WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			ps := w.step(ctx, tracing.SpanProcess)
			r, err := safeProcess(ps.ctx, pipe, ps.tx(tx), b)
			ps.endResult(r, err)
			if err != nil {
				return err
			}
			r.Duration = time.Since(start)
			res = r
			checkpoint = w.step(ctx, tracing.SpanCheckpoint)
			_, err = w.txStore.CompleteBatchTx(checkpoint.ctx, checkpoint.tx(tx), b.RunID, b.Seq, token, r)
			return err
		}, &sql.TxOptions{})
		checkpoint.end(err)
		return res, err
	}
	start := time.Now()
	ps := w.step(ctx, tracing.SpanProcess)
	res, err = safeProcess(ps.ctx, pipe, nil, b)
	ps.endResult(res, err)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	checkpoint := w.step(ctx, tracing.SpanCheckpoint)
	_, err = w.cfg.Store.CompleteBatch(context.WithoutCancel(checkpoint.ctx), b.RunID, b.Seq, token, res)
	checkpoint.end(err)
	return res, err
}

type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// safeProcess turns a panic in user code into a batch error with its stack.
func safeProcess(ctx context.Context, pipe engine.Pipeline, tx *gorm.DB, b store.Batch) (res store.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	if bp, ok := pipe.(engine.BatchProcessor); ok {
		return bp.ProcessBatch(ctx, tx, b)
	}
	return pipe.Process(ctx, tx, b.Lo, b.Hi)
}

// ack tells a source that acknowledges deliveries (a consumer group) that
// the batch's checkpoint has committed.
func (w *Worker) ack(ctx context.Context, b store.Batch, log *zap.Logger) {
	w.mu.Lock()
	o, ok := w.pipes[b.RunID]
	w.mu.Unlock()
	a, isAcker := o.pipe.(engine.Acker)
	if !ok || !isAcker {
		return
	}
	if err := a.Ack(context.WithoutCancel(ctx), b.Lo, b.Hi); err != nil {
		log.Warn("acknowledge batch to its source; its records may be delivered again", zap.Error(err))
	}
}

// pipeline returns the run's opened pipeline, cached per run.
func (w *Worker) pipeline(ctx context.Context, run store.Run) (engine.Pipeline, error) {
	w.mu.Lock()
	o, ok := w.pipes[run.ID]
	w.mu.Unlock()
	if ok {
		return o.pipe, nil
	}
	// A spec flow's run runs with the version it was created with.
	job, err := w.reg.Resolve(ctx, run.Definition, run.SpecVersion)
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", run.ID, err)
	}
	p, err := job.Open(ctx, engine.Env{DB: w.cfg.DB, Logger: w.log, Resources: w.cfg.Resources}, run.Params)
	if err != nil {
		return nil, fmt.Errorf("open %s for run %d: %w", run.Definition, run.ID, err)
	}
	w.mu.Lock()
	if len(w.pipes) > 256 {
		clear(w.pipes)
	}
	w.pipes[run.ID] = openRun{run: run, pipe: p}
	w.mu.Unlock()
	return p, nil
}

// openedRun returns the run as it was when this worker opened its pipeline.
func (w *Worker) openedRun(id int64) (store.Run, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o, ok := w.pipes[id]
	return o.run, ok
}

// heartbeat extends the batch's claim while it runs.
func (w *Worker) heartbeat(ctx context.Context, b store.Batch, token string, log *zap.Logger) (stop func()) {
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.ClaimLease / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				if _, err := w.cfg.Store.ExtendClaim(hctx, b.RunID, b.Seq, token, w.cfg.ClaimLease); err != nil && hctx.Err() == nil {
					log.Warn("extend batch claim", zap.Error(err))
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// replay retries a failed batch of a failed run whose archived task was run
// again by hand.
func (w *Worker) replay(ctx context.Context, run store.Run, seq int64, log *zap.Logger) error {
	b, err := w.cfg.Store.GetBatch(ctx, run.ID, seq)
	if err != nil || b.State != store.BatchFailed {
		return store.ErrRunNotRunning
	}
	if _, err := w.cfg.Store.RetryBatches(ctx, run.ID, &seq); err != nil {
		log.Warn("retry replayed batch", zap.Error(err))
		return err
	}
	w.cfg.Events.RunResumed(ctx, run.ID)
	w.noteReplay(ctx, run.ID, seq, log)
	log.Info("archived task replayed: batch retried")
	return store.ErrRunNotRunning
}
