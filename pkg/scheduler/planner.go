package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// plannerStore is what runPlanner needs of the store.
type plannerStore interface {
	GetRun(ctx context.Context, id int64) (store.Run, error)
	TransitionRun(ctx context.Context, id int64, to store.RunState, opts *store.TransitionOptions) (store.Run, error)
	CancelExpiredBatches(ctx context.Context, runID int64) (store.Run, error)
	SetRunTotal(ctx context.Context, id int64, total int64, estimated bool) error
	AppendBatches(ctx context.Context, runID int64, step store.PlanStep) ([]store.Batch, error)
	ListBatches(ctx context.Context, runID int64, f store.BatchFilter) (store.Page[store.Batch], error)
	GetBatch(ctx context.Context, runID, seq int64) (store.Batch, error)
	EnqueueBatch(ctx context.Context, runID, seq int64) (store.Batch, error)
	GetFlow(ctx context.Context, name string) (store.FlowState, error)
	AdvanceWatermark(ctx context.Context, name, from, to string) (store.FlowState, error)
}

// batchQueue is what the planner needs of the task queue (tasks.Client).
type batchQueue interface {
	EnqueueBatch(ctx context.Context, p tasks.BatchPayload, o tasks.EnqueueOptions) (bool, error)
	DeleteBatchTask(ctx context.Context, p tasks.BatchPayload) error
}

// Defaults of runPlanner.
const (
	// snapshotWaitDefault bounds how long a run's first batch waits for its
	// count's snapshot.
	snapshotWaitDefault = time.Second
	// countRetryDefault is how long after a failed count the run is
	// counted again.
	countRetryDefault = 30 * time.Second
	// enqueueParallel is how many batches of one run the scheduler
	// enqueues at once when the run is not paced.
	enqueueParallel = 16
	// planStep is how many batches one step of planning appends (the first
	// step of a run: one, so it starts before the rest is planned).
	planStep = 16
)

// runPlanner moves one run at a time forward: it starts a scheduled run
// when its time comes, keeps a running run's window of queued batches full
// (planning lazily, enqueueing, pacing), counts its records in the
// background, and ends it when everything is done. It holds one runState
// per run it looks after.
type runPlanner struct {
	store        plannerStore
	queue        batchQueue
	open         pipelineOpener
	wake         *wakeup
	runs         runStates
	snapshotWait time.Duration
	countRetry   time.Duration
	log          *zap.Logger
	notify       *notifier    // nil: no hooks or webhooks
	tracer       trace.Tracer // nil: tracing off (see trace.go)
	// health evaluates runs' health checks, at most once per
	// healthInterval per run (see health.go).
	health         healthChecker
	healthInterval time.Duration
}

func newRunPlanner(st plannerStore, q batchQueue, open pipelineOpener, wake *wakeup, log *zap.Logger) *runPlanner {
	return &runPlanner{store: st, queue: q, open: open, wake: wake,
		snapshotWait: snapshotWaitDefault, countRetry: countRetryDefault, log: log,
		healthInterval: HealthIntervalDefault}
}

// advance moves one run forward as far as it can go now.
func (p *runPlanner) advance(ctx context.Context, r store.Run) {
	log := p.log.With(zap.Int64("run", r.ID), zap.String("definition", r.Definition))
	var err error
	switch r.State {
	case store.RunScheduled:
		if r.StartAt != nil && r.StartAt.After(time.Now()) {
			p.wake.noLaterThan(*r.StartAt)
			return
		}
		if r, err = p.store.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
			log.Warn("start run", zap.Error(err))
			return
		}
		p.runStarted(ctx, r, log)
		err = p.fill(ctx, r, log)
	case store.RunRunning:
		err = p.fill(ctx, r, log)
	case store.RunCancelling:
		// In-flight batches finish; one whose worker died (its lease
		// expired, nobody may claim it again in a cancelling run) is
		// cancelled, so the run does not stay cancelling for good.
		var got store.Run
		if got, err = p.store.CancelExpiredBatches(ctx, r.ID); err == nil && got.State == store.RunCancelled {
			if n := got.BatchesCancelled - r.BatchesCancelled; n > 0 {
				log.Warn("cancelled batches whose worker stopped", zap.Int64("batches", n))
			}
			log.Info("run cancelled")
			p.runEnded(ctx, got, log)
		}
	default:
		if r.State.Terminal() {
			// Ended elsewhere (cancelled with nothing in flight), or an
			// event about a run this scheduler ended.
			p.notify.ended(ctx, r)
			p.forgetHealth(ctx, r)
			p.forget(r.ID)
		}
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
		log.Warn("schedule run", zap.Error(err))
	}
}

// forget drops what the planner keeps about the run.
func (p *runPlanner) forget(id int64) {
	p.runs.forget(id)
	forgetRunMetrics(id)
	p.forgetTimeline(id)
}

// fill keeps the run's window of queued batches full and ends the run when
// everything is done.
func (p *runPlanner) fill(ctx context.Context, r store.Run, log *zap.Logger) error {
	st := p.runs.get(r.ID)
	pipe, err := st.pipeline(ctx, r, p.open)
	var fe *flows.FieldError
	if errors.Is(err, engine.ErrUnknownConnection) || errors.As(err, &fe) {
		// A connection the flow names is not configured here, or the
		// run's spec version does not compile in this binary (a connector
		// or transform it does not link): waiting will not bring it, so
		// the run ends saying what is wrong.
		if terr := p.endRun(ctx, r, store.RunFailed, fmt.Sprintf("cannot plan: %v", err), log); terr != nil {
			return errors.Join(err, terr)
		}
		log.Warn("run failed: cannot plan", zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	p.notify.started(ctx, r) // also a run started by control, or before a restart
	if snap := p.countOnce(ctx, st, r, pipe, log); snap != nil && r.BatchesTotal() == 0 {
		// The first batch waits until the count has fixed the instant it
		// counts at, so a backfill that moves records out of its own scope
		// is still counted whole.
		select {
		case <-snap:
		case <-time.After(p.snapshotWait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.Options.ErrorBudget > 0 && r.BatchesFailed >= int64(r.Options.ErrorBudget) {
		msg := fmt.Sprintf("stopped: %d batches failed, error budget is %d; fix the cause and retry the failed batches", r.BatchesFailed, r.Options.ErrorBudget)
		if err := p.endRun(ctx, r, store.RunFailed, msg, log); err != nil {
			return err
		}
		log.Warn("run failed: error budget exceeded", zap.Int64("failed_batches", r.BatchesFailed))
		return nil
	}
	// An adaptive run's batches are planned (and paced) with its current
	// size (adaptive.go); any other run's with its batch size.
	r.Options.BatchSize = p.batchSize(ctx, st, r, log)
	free := adaptiveWindow(r, int64(r.Options.MaxInFlight)-r.BatchesEnqueued-r.BatchesRunning)
	if free > 0 && (r.BatchesPending > 0 || !r.PlanDone) && len(r.Options.HealthChecks) > 0 {
		// The database-health throttle (health.go): a failing check
		// holds every new batch back; batches in flight finish.
		ok, ended := p.healthy(ctx, st, r, log)
		if ended {
			return nil
		}
		if !ok {
			free = 0
		}
	}
	// Batches planned (or retried) but not yet enqueued go first.
	if free > 0 && r.BatchesPending > 0 {
		page, err := p.store.ListBatches(ctx, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchPending}, Limit: int(min(free, store.MaxLimit))})
		if err != nil {
			return err
		}
		if ok, err := p.enqueueAll(ctx, st, r, page.Items); err != nil || !ok {
			return err // or paced: wait for the next slot
		}
		free -= int64(len(page.Items))
	}
	for free > 0 && !r.PlanDone {
		n := min(free, planStep)
		if r.BatchesTotal() == 0 {
			n = 1 // the first batch starts before the rest is planned
		}
		bs, next, err := p.plan(ctx, r, pipe, int(n))
		if err != nil {
			return err
		}
		r = next
		if ok, err := p.enqueueAll(ctx, st, r, bs); err != nil || !ok {
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
		if r, err = p.store.GetRun(ctx, r.ID); err != nil {
			return err
		}
	}
	if r.State == store.RunRunning && r.PlanDone && r.InFlight() == 0 {
		return p.finish(ctx, r, pipe, log)
	}
	return nil
}

// plan appends up to n batches after the run's plan cursor.
func (p *runPlanner) plan(ctx context.Context, r store.Run, pipe engine.Pipeline, n int) ([]store.Batch, store.Run, error) {
	lo := r.PlanCursor
	if lo == "" && r.BatchesTotal() == 0 && pipe.Incremental() {
		fs, err := p.store.GetFlow(ctx, r.Definition)
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
		step.Batches = append(step.Batches, store.KeyRange{Lo: lo, Hi: hi, Size: r.Options.BatchSize})
		step.To, lo = hi, hi
		if !more {
			step.Done = true
			break
		}
	}
	bs, err := p.store.AppendBatches(ctx, r.ID, step)
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

// finish ends a run whose batches are all done: failed if any batch
// failed, otherwise succeeded, after moving an incremental flow's watermark
// to the run's last key.
func (p *runPlanner) finish(ctx context.Context, r store.Run, pipe engine.Pipeline, log *zap.Logger) error {
	if r.BatchesFailed > 0 {
		msg := fmt.Sprintf("%d of %d batches failed; fix the cause and retry the failed batches", r.BatchesFailed, r.BatchesTotal())
		if err := p.endRun(ctx, r, store.RunFailed, msg, log); err != nil {
			return err
		}
		log.Warn("run failed", zap.Int64("failed_batches", r.BatchesFailed))
		return nil
	}
	if pipe.Incremental() && r.BatchesTotal() > 0 {
		first, err := p.store.GetBatch(ctx, r.ID, 1)
		if err != nil {
			return err
		}
		if _, err := p.store.AdvanceWatermark(ctx, r.Definition, first.Lo, r.PlanCursor); err != nil {
			msg := fmt.Sprintf("could not advance the watermark from %s to %s: %v", first.Lo, r.PlanCursor, err)
			return errors.Join(err, p.endRun(ctx, r, store.RunFailed, msg, log))
		}
	}
	if err := p.endRun(ctx, r, store.RunSucceeded, "", log); err != nil {
		return err
	}
	log.Info("run succeeded", zap.Int64("rows", r.RowsRead), zap.Int64("batches", r.BatchesSucceeded))
	return nil
}

// endRun moves the run to a final state (failed with msg as its error, or
// succeeded) and hands the ended run to runEnded.
func (p *runPlanner) endRun(ctx context.Context, r store.Run, to store.RunState, msg string, log *zap.Logger) error {
	var opts *store.TransitionOptions
	if msg != "" {
		opts = &store.TransitionOptions{Error: msg}
	}
	got, err := p.store.TransitionRun(ctx, r.ID, to, opts)
	if err != nil {
		return err
	}
	p.runEnded(ctx, got, log)
	return nil
}
