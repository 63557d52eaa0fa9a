package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// FirstBatchResult is section 4: a scheduler and a worker as separate
// processes (SQL store), time to first batch and peak RSS at each size.
type FirstBatchResult struct {
	Concurrency int              `json:"concurrency"`
	Sizes       []FirstBatchSize `json:"sizes"`
	// RSSGrowthScheduler and RSSGrowthWorker are the peak RSS at the
	// largest size divided by the peak RSS at the smallest.
	RSSGrowthScheduler float64 `json:"rss_growth_scheduler"`
	RSSGrowthWorker    float64 `json:"rss_growth_worker"`
}

// FirstBatchSize is one table size.
type FirstBatchSize struct {
	Rows int     `json:"rows"`
	Seed Seconds `json:"seed_s"`
	// Samples are the times from CreateRun returning to batch 1's
	// StartedAt (its claim by the worker), one per run; every run but the
	// last is cancelled once its first batch started, and the next starts
	// once the scheduler's background count of its rows is done.
	Samples []Seconds `json:"samples_s"`
	Median  Seconds   `json:"median_s"`
	Max     Seconds   `json:"max_s"`
	// Planned and Enqueued split the median sample: from CreateRun
	// returning to batch 1's creation (planned) and to its EnqueuedAt.
	Planned  Seconds `json:"planned_s"`
	Enqueued Seconds `json:"enqueued_s"`
	// FullRun is the last run, which processes every row.
	FullRun    Seconds `json:"full_run_s"`
	RowsPerSec float64 `json:"rows_per_s"`
	// Peak (VmHWM) and final (VmRSS) resident set sizes, in MiB, after
	// the full run.
	SchedulerPeakMiB float64 `json:"scheduler_peak_mib"`
	WorkerPeakMiB    float64 `json:"worker_peak_mib"`
	SchedulerRSSMiB  float64 `json:"scheduler_rss_mib"`
	WorkerRSSMiB     float64 `json:"worker_rss_mib"`
}

func (r *runner) firstBatch(ctx context.Context) (*FirstBatchResult, error) {
	sizes := slices.Clone(r.cfg.Sizes)
	slices.Sort(sizes)
	r.logf("section 4: time to first batch and RSS at %v rows (scheduler and worker as processes, SQL store)", sizes)
	res := &FirstBatchResult{Concurrency: r.cfg.Concurrency}
	for _, n := range sizes {
		s, err := r.firstBatchAt(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%d rows: %w", n, err)
		}
		r.logf("  %10d rows: first batch median %.1fms max %.1fms; full run %.1fs; peak RSS scheduler %.1f MiB, worker %.1f MiB",
			n, s.Median.Seconds()*1000, s.Max.Seconds()*1000, s.FullRun.Seconds(), s.SchedulerPeakMiB, s.WorkerPeakMiB)
		res.Sizes = append(res.Sizes, s)
	}
	first, last := res.Sizes[0], res.Sizes[len(res.Sizes)-1]
	res.RSSGrowthScheduler = last.SchedulerPeakMiB / first.SchedulerPeakMiB
	res.RSSGrowthWorker = last.WorkerPeakMiB / first.WorkerPeakMiB
	return res, nil
}

func (r *runner) firstBatchAt(ctx context.Context, rows int) (FirstBatchSize, error) {
	out := FirstBatchSize{Rows: rows}
	name, url, err := r.svc.createDB(ctx, "", false)
	if err != nil {
		return out, err
	}
	defer r.svc.dropDB(ctx, name)
	start := time.Now()
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		return out, err
	}
	if err := seed(ctx, url, rows); err != nil {
		return out, err
	}
	out.Seed = Seconds(time.Since(start))
	r.logf("  seeded %d rows in %s", rows, time.Since(start).Round(time.Millisecond))
	if rows >= largeTable {
		r.svc.checkpoint(ctx)
	}

	rurl, rdb, release, err := r.svc.redisDB(ctx)
	if err != nil {
		return out, err
	}
	defer release()
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{MaxOpenConns: 4})
	if err != nil {
		return out, err
	}
	defer st.Close()
	ctl := &control.Controller{Store: st, Registry: r.reg, Events: events.New(rdb, "")}

	dir, err := os.MkdirTemp("", "dripflow-bench-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)
	env := []string{
		"DRIPFLOW_REDIS_URL=" + rurl, "DRIPFLOW_DATABASE_URL=" + url, "DRIPFLOW_STORE=sql",
		"DRIPFLOW_LOG_LEVEL=warn", "DRIPFLOW_LOG_FORMAT=console",
		// The ops endpoints run as in production, on a port of their own.
		"DRIPFLOW_METRICS_ADDR=127.0.0.1:0",
		"DRIPFLOW_WORKER_CONCURRENCY=" + strconv.Itoa(r.cfg.Concurrency),
	}
	var procs []*process
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for _, mode := range []string{"scheduler", "worker"} {
		p, err := startProcess(mode, dir, env...)
		if err != nil {
			return out, err
		}
		procs = append(procs, p)
	}
	sch, wrk := procs[0], procs[1]
	fail := func(err error) (FirstBatchSize, error) {
		return out, fmt.Errorf("%w\n--- scheduler log ---\n%s\n--- worker log ---\n%s", err, sch.tail(20), wrk.tail(20))
	}
	if err := waitReady(ctx, rdb, sch, wrk); err != nil {
		return fail(err)
	}

	newRun := control.NewRun{Definition: defBump, CreatedBy: "bench", BatchSize: &r.cfg.BatchSize, MaxInFlight: &r.cfg.MaxInFlight}
	var planned, enqueued []time.Duration
	var lastRun store.Run
	for i := 0; i < r.cfg.FirstBatchSamples; i++ {
		run, err := ctl.CreateRun(ctx, newRun)
		if err != nil {
			return fail(err)
		}
		created := time.Now()
		b, err := waitFirstBatch(ctx, st, run.ID, 30*time.Second)
		if err != nil {
			return fail(err)
		}
		out.Samples = append(out.Samples, Seconds(b.StartedAt.Sub(created)))
		planned = append(planned, b.CreatedAt.Sub(created))
		enqueued = append(enqueued, b.EnqueuedAt.Sub(created))
		if i < r.cfg.FirstBatchSamples-1 {
			if _, err := ctl.Cancel(ctx, run.ID); err != nil {
				return fail(err)
			}
			if _, err := waitRun(ctx, st, run.ID, time.Minute); err != nil {
				return fail(err)
			}
			// Each run counts its rows in the background; the next sample
			// starts once that count is done, so that it meets only its
			// own run's count.
			if err := waitCounted(ctx, st, run.ID, 30*time.Second); err != nil {
				return fail(err)
			}
			continue
		}
		if lastRun, err = waitRun(ctx, st, run.ID, r.cfg.Timeout); err != nil {
			return fail(err)
		}
		if lastRun.State != store.RunSucceeded || lastRun.RowsWritten != int64(rows) {
			return fail(fmt.Errorf("run %d ended %s with %d rows written, want succeeded with %d", run.ID, lastRun.State, lastRun.RowsWritten, rows))
		}
		out.FullRun = Seconds(lastRun.FinishedAt.Sub(created))
		out.RowsPerSec = float64(rows) / out.FullRun.Seconds()
	}
	idx := make([]int, len(out.Samples))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(out.Samples[a] - out.Samples[b]) })
	mid := idx[len(idx)/2]
	out.Median, out.Max = out.Samples[mid], out.Samples[idx[len(idx)-1]]
	out.Planned, out.Enqueued = Seconds(planned[mid]), Seconds(enqueued[mid])

	const mib = 1 << 20
	for _, p := range []struct {
		proc       *process
		peak, curr *float64
	}{{sch, &out.SchedulerPeakMiB, &out.SchedulerRSSMiB}, {wrk, &out.WorkerPeakMiB, &out.WorkerRSSMiB}} {
		peak, curr, err := p.proc.memory()
		if err != nil {
			return fail(err)
		}
		*p.peak, *p.curr = float64(peak)/mib, float64(curr)/mib
	}
	return out, nil
}

// waitReady waits until the scheduler leads and the worker's queue server
// has registered itself.
func waitReady(ctx context.Context, rdb *redis.Client, sch, wrk *process) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if sch.exited() || wrk.exited() {
			return errors.New("a process exited before it was ready")
		}
		leader, err := rdb.Exists(ctx, "dripflow:scheduler:leader").Result()
		if err != nil {
			return err
		}
		servers, err := rdb.ZCard(ctx, "asynq:servers").Result()
		if err != nil {
			return err
		}
		if leader == 1 && servers >= 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes not ready after 30s (leader %v, worker servers %d)", leader == 1, servers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFirstBatch polls batch 1 of the run until a worker has claimed it.
func waitFirstBatch(ctx context.Context, st store.Store, runID int64, timeout time.Duration) (store.Batch, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := st.GetBatch(ctx, runID, 1)
		if err == nil && b.StartedAt != nil {
			return b, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return b, err
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("batch 1 of run %d not started after %s", runID, timeout)
		}
		select {
		case <-ctx.Done():
			return b, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitCounted waits until the run's total is known (counted or estimated).
func waitCounted(ctx context.Context, st store.Store, runID int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r, err := st.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		if r.Total >= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %d not counted after %s", runID, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
