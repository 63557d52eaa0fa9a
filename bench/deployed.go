package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
)

// Shapes a dripflow variant runs in.
const (
	// ShapeProcesses is the shape users deploy: the scheduler and the
	// worker are processes of their own (this executable re-run through
	// package run, as cmd/scheduler and cmd/worker run), with their
	// defaults, talking to each other only through Redis and the store.
	ShapeProcesses = "processes"
	// ShapeInProcess runs the scheduler and the worker inside the
	// benchmark's process, sharing its store and Redis clients.
	ShapeInProcess = "in-process"
)

// runDripflow runs n on de to its end, with the scheduler and the worker in
// the given shape, and measures how full the run kept the worker's slots.
func (r *runner) runDripflow(ctx context.Context, de *dripflowEnv, shape string, concurrency int, n control.NewRun) (runResult, Pipeline, error) {
	var rr runResult
	var err error
	if shape == ShapeProcesses {
		rr, err = r.runOnProcesses(ctx, de, concurrency, n)
	} else {
		rr, err = r.runOnCluster(ctx, de, concurrency, n)
	}
	if err != nil {
		return rr, Pipeline{}, err
	}
	bs, err := allBatches(ctx, de.st, rr.Run.ID)
	if err != nil {
		return rr, Pipeline{}, err
	}
	pl := pipelineOf(bs, concurrency, maxInFlight(n))
	if pl.Span > 0 {
		pl.WorkerBusySlots = rr.WorkerBusy.Seconds() / pl.Span.Seconds()
	}
	return rr, pl, nil
}

func maxInFlight(n control.NewRun) int {
	if n.MaxInFlight != nil {
		return *n.MaxInFlight
	}
	return 0
}

// runOnProcesses starts a scheduler and a worker of the given concurrency
// as processes on de, with everything else at its default (as README's
// "Running in production"), runs n to its end, and stops them.
func (r *runner) runOnProcesses(ctx context.Context, de *dripflowEnv, concurrency int, n control.NewRun) (runResult, error) {
	if de.dbURL == "" {
		// The processes refuse to start without an application database,
		// even on the Redis store with a job that needs none.
		name, url, err := r.svc.createDB(ctx, "", false)
		if err != nil {
			return runResult{}, err
		}
		defer r.svc.dropDB(context.WithoutCancel(ctx), name)
		de.dbURL = url
	}
	dir, err := os.MkdirTemp("", "dripflow-bench-")
	if err != nil {
		return runResult{}, err
	}
	defer os.RemoveAll(dir)
	storeKind := "sql"
	if de.redisStore {
		storeKind = "redis"
	}
	env := []string{
		"DRIPFLOW_REDIS_URL=" + de.redisURL, "DRIPFLOW_DATABASE_URL=" + de.dbURL, "DRIPFLOW_STORE=" + storeKind,
		"DRIPFLOW_LOG_LEVEL=warn", "DRIPFLOW_LOG_FORMAT=console",
		"DRIPFLOW_WORKER_CONCURRENCY=" + strconv.Itoa(concurrency),
	}
	// The worker's metrics listen where the benchmark can read its slots.
	metricsAddr, err := freeAddr()
	if err != nil {
		return runResult{}, err
	}
	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, mode := range []string{"scheduler", "worker"} {
		addr := "127.0.0.1:0"
		if mode == "worker" {
			addr = metricsAddr
		}
		p, err := startProcess(mode, dir, append(env, "DRIPFLOW_METRICS_ADDR="+addr)...)
		if err != nil {
			return runResult{}, err
		}
		procs = append(procs, p)
	}
	sch, wrk := procs[0], procs[1]
	fail := func(err error) (runResult, error) {
		return runResult{}, fmt.Errorf("%w\n--- scheduler log ---\n%s\n--- worker log ---\n%s", err, sch.tail(20), wrk.tail(20))
	}
	if err := waitReady(ctx, de.rdb, sch, wrk); err != nil {
		return fail(err)
	}
	ctl := &control.Controller{Store: de.st, Registry: r.reg, Events: events.New(de.rdb, "")}
	busy, berr := scrapeBusy(ctx, metricsAddr)
	rr, err := runToEnd(ctx, ctl, de.st, n, r.cfg.Timeout)
	if err != nil {
		return fail(err)
	}
	if after, err := scrapeBusy(ctx, metricsAddr); err == nil && berr == nil {
		rr.WorkerBusy = after - busy
	} else {
		r.logf("warning: %v", errors.Join(berr, err))
	}
	r.writeTimeline(ctx, de, rr, n, "processes")
	return rr, nil
}

// Pipeline is how full a run kept the worker's slots, from the store's
// batch rows (the timestamps of enqueue, claim and checkpoint, and the time
// the worker spent in each batch).
type Pipeline struct {
	Batches int `json:"batches"`
	Slots   int `json:"slots"`
	// Span is from the first batch's claim to the last one's checkpoint.
	Span Seconds `json:"span_s"`
	// BusySlots is Σ batch duration / Span: how many of the worker's
	// Slots were, on average, inside a batch.
	BusySlots float64 `json:"busy_slots"`
	// WorkerBusySlots is the worker's own count of its busy slots: the
	// time its handlers spent on batch tasks (claim to commit, by
	// dripflow_worker_busy_seconds_total) / Span. The batch rows'
	// BusySlots and HeldSlots stop before the COMMIT of a checkpoint
	// written in the data's transaction; this does not.
	WorkerBusySlots float64 `json:"worker_busy_slots"`
	// HeldSlots is Σ (checkpoint − claim) / Span: slots holding a
	// claimed batch (BusySlots plus what the worker does around the
	// batch between its claim and its checkpoint).
	HeldSlots float64 `json:"held_slots"`
	// StarvedSlots are slots not holding a batch while no task waited in
	// the queue (the scheduler had not enqueued the next one); IdleQueued
	// are slots not holding a batch while a task waited (the worker had
	// not picked it up yet: polling, completing the last task).
	// HeldSlots + StarvedSlots + IdleQueued = Slots.
	StarvedSlots float64 `json:"starved_slots"`
	IdleQueued   float64 `json:"idle_queued_slots"`
	// QueueWait is the mean time from enqueue to claim.
	QueueWait Seconds `json:"queue_wait_s"`
	// Reaction is the mean time from a slot's batch finishing (the k-th
	// checkpoint) to the batch that could take its place being enqueued
	// (the (k+max_in_flight)-th enqueue), counted as 0 when it was
	// enqueued before: how fast the scheduler refills the window.
	Reaction Seconds `json:"reaction_s"`
	// BatchMean is the mean time a worker spent in one batch.
	BatchMean Seconds `json:"batch_mean_s"`
}

// String is the pipeline in one line.
func (p Pipeline) String() string {
	if p.Batches == 0 {
		return ""
	}
	return fmt.Sprintf("worker busy %.2f of %d slots; rows: busy %.2f (held %.2f, starved %.2f, queued-idle %.2f); batch %.1f ms, queue wait %.1f ms, refill %.1f ms",
		p.WorkerBusySlots, p.Slots, p.BusySlots, p.HeldSlots, p.StarvedSlots, p.IdleQueued, ms(p.BatchMean), ms(p.QueueWait), ms(p.Reaction))
}

func ms(s Seconds) float64 { return s.Seconds() * 1000 }

// pipelineOf measures bs, run by a worker of slots slots with the run's
// max_in_flight window (0: no refill figure).
func pipelineOf(bs []store.Batch, slots, window int) Pipeline {
	p := Pipeline{Slots: slots}
	type event struct {
		at               time.Time
		waiting, running int
	}
	var evs []event
	var sumDur, sumHeld, sumWait time.Duration
	var first, last time.Time
	var enq, fin []time.Time
	for _, b := range bs {
		if b.State != store.BatchSucceeded || b.StartedAt == nil || b.FinishedAt == nil {
			continue
		}
		p.Batches++
		sumDur += b.Duration
		sumHeld += b.FinishedAt.Sub(*b.StartedAt)
		if first.IsZero() || b.StartedAt.Before(first) {
			first = *b.StartedAt
		}
		if b.FinishedAt.After(last) {
			last = *b.FinishedAt
		}
		evs = append(evs, event{at: *b.StartedAt, running: 1}, event{at: *b.FinishedAt, running: -1})
		fin = append(fin, *b.FinishedAt)
		if b.EnqueuedAt != nil {
			sumWait += b.StartedAt.Sub(*b.EnqueuedAt)
			enq = append(enq, *b.EnqueuedAt)
			evs = append(evs, event{at: *b.EnqueuedAt, waiting: 1}, event{at: *b.StartedAt, waiting: -1})
		}
	}
	if p.Batches == 0 || !last.After(first) {
		return p
	}
	span := last.Sub(first)
	p.Span = Seconds(span)
	p.BatchMean = Seconds(sumDur / time.Duration(p.Batches))
	p.BusySlots = float64(sumDur) / float64(span)
	p.HeldSlots = float64(sumHeld) / float64(span)
	if len(enq) > 0 {
		p.QueueWait = Seconds(sumWait / time.Duration(len(enq)))
	}
	slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	var waiting, running int
	var starved, queued time.Duration
	for i, e := range evs {
		waiting += e.waiting
		running += e.running
		if i+1 == len(evs) {
			break
		}
		from, to := e.at, evs[i+1].at
		if from.Before(first) {
			from = first
		}
		if to.After(last) {
			to = last
		}
		if !to.After(from) {
			continue
		}
		idle := max(slots-running, 0)
		q := min(idle, max(waiting, 0))
		queued += time.Duration(q) * to.Sub(from)
		starved += time.Duration(idle-q) * to.Sub(from)
	}
	p.StarvedSlots = float64(starved) / float64(span)
	p.IdleQueued = float64(queued) / float64(span)
	if window > 0 && len(enq) > window {
		slices.SortFunc(enq, time.Time.Compare)
		slices.SortFunc(fin, time.Time.Compare)
		var sum time.Duration
		n := 0
		for k := 0; k+window < len(enq) && k < len(fin); k++ {
			sum += max(enq[k+window].Sub(fin[k]), 0)
			n++
		}
		if n > 0 {
			p.Reaction = Seconds(sum / time.Duration(n))
		}
	}
	return p
}

// allBatches reads every batch of the run.
func allBatches(ctx context.Context, st store.Store, runID int64) ([]store.Batch, error) {
	var bs []store.Batch
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := st.ListBatches(ctx, runID, f)
		if err != nil {
			return nil, fmt.Errorf("list batches of run %d: %w", runID, err)
		}
		bs = append(bs, page.Items...)
		if page.NextCursor == "" {
			return bs, nil
		}
		f.Cursor = page.NextCursor
	}
}
