package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// StoreOpsResult is section 5: what the store costs per batch, driven
// straight (no scheduler, worker or queue), for the SQL store on PostgreSQL
// and for the Redis store.
type StoreOpsResult struct {
	Batches  int          `json:"batches"`
	Parallel int          `json:"parallel"`
	SQL      StoreOpsCost `json:"sql"`
	Redis    StoreOpsCost `json:"redis"`
	// SQLvsRedis is the SQL store's sequential cost per batch divided by
	// the Redis store's.
	SQLvsRedis float64 `json:"sql_vs_redis"`
}

// StoreOpsCost is one store's cost. A batch's store operations are the ones
// a run makes for it: AppendBatches (one call plans 16 batches), EnqueueBatch
// (scheduler), GetRun and ClaimBatch (worker), CompleteBatch (worker).
type StoreOpsCost struct {
	Description string `json:"description"`
	// PerBatch is the sequential (one goroutine) time of all of a batch's
	// operations; Ops splits it by operation (mean per batch).
	PerBatch Seconds            `json:"per_batch_s"`
	Ops      map[string]Seconds `json:"ops_s"`
	// P50 and P99 of the sequential per-batch time.
	P50 Seconds `json:"p50_s"`
	P99 Seconds `json:"p99_s"`
	// ParallelPerSec is batches per second through claim and complete (with
	// GetRun) from Parallel goroutines on one run — the worker side under
	// contention for the run's counters.
	ParallelPerSec float64 `json:"parallel_per_s"`
}

// Store operation names in StoreOpsCost.Ops.
const (
	opAppend   = "append_batches"
	opEnqueue  = "enqueue_batch"
	opGetRun   = "get_run"
	opClaim    = "claim_batch"
	opComplete = "complete_batch"
)

func (r *runner) storeOps(ctx context.Context) (*StoreOpsResult, error) {
	n, par := r.cfg.StoreOpsBatches, r.cfg.StoreOpsParallel
	r.logf("section 5: store operations of %d batches, sequential and %d in parallel", n, par)
	res := &StoreOpsResult{Batches: n, Parallel: par}

	_, url, err := r.svc.createDB(ctx, "", false)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		return nil, err
	}
	sst, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		return nil, err
	}
	defer sst.Close()
	if res.SQL, err = measureStore(ctx, sst, n, par); err != nil {
		return nil, fmt.Errorf("SQL store: %w", err)
	}
	res.SQL.Description = "SQL store on PostgreSQL (pool of 16 connections)"
	r.logf("  %-15s %7.0fµs per batch  %7.0f batches/s in parallel", "sql", res.SQL.PerBatch.Seconds()*1e6, res.SQL.ParallelPerSec)

	_, rdb, release, err := r.svc.redisDB(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	rst, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		return nil, err
	}
	if res.Redis, err = measureStore(ctx, rst, n, par); err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	res.Redis.Description = "Redis store (one Lua script per operation)"
	r.logf("  %-15s %7.0fµs per batch  %7.0f batches/s in parallel", "redis", res.Redis.PerBatch.Seconds()*1e6, res.Redis.ParallelPerSec)
	res.SQLvsRedis = res.SQL.PerBatch.Seconds() / res.Redis.PerBatch.Seconds()
	return res, nil
}

// measureStore drives n batches of one run through st sequentially, then n
// more through claim and complete from par goroutines.
func measureStore(ctx context.Context, st store.Store, n, par int) (StoreOpsCost, error) {
	opts := store.RunOptions{BatchSize: 1000, MaxAttempts: 1, MaxInFlight: store.MaxMaxInFlight}
	newRun := func() (store.Run, error) {
		run, err := st.CreateRun(ctx, store.NewRun{Definition: defNoop, Kind: store.KindBackfill, CreatedBy: "bench", Options: opts})
		if err != nil {
			return run, err
		}
		return st.TransitionRun(ctx, run.ID, store.RunRunning, nil)
	}
	claim := func(i int) store.Claim {
		return store.Claim{Worker: "bench", Token: fmt.Sprintf("t%d-%d", i, time.Now().UnixNano()), Lease: time.Minute}
	}
	// plan appends up to 16 batches after the run's cursor.
	plan := func(run *store.Run, k int) ([]store.Batch, error) {
		step := store.PlanStep{From: run.PlanCursor}
		lo := run.PlanCursor
		for j := 0; j < k; j++ {
			hi := fmt.Sprintf("[%d]", (int(run.BatchesTotal())+j+1)*1000)
			step.Batches = append(step.Batches, store.KeyRange{Lo: lo, Hi: hi})
			lo = hi
		}
		step.To = lo
		bs, err := st.AppendBatches(ctx, run.ID, step)
		if err == nil {
			run.PlanCursor = step.To
			run.BatchesPending += int64(len(bs))
		}
		return bs, err
	}

	// Sequential: one batch after the other, every operation timed.
	run, err := newRun()
	if err != nil {
		return StoreOpsCost{}, err
	}
	sums := map[string]time.Duration{}
	perBatch := make([]time.Duration, 0, n)
	var pending []store.Batch
	var appendShare time.Duration
	for i := 0; i < n; i++ {
		if len(pending) == 0 {
			t := time.Now()
			if pending, err = plan(&run, min(16, n-i)); err != nil {
				return StoreOpsCost{}, fmt.Errorf("append batches: %w", err)
			}
			d := time.Since(t)
			sums[opAppend] += d
			appendShare = d / time.Duration(len(pending))
		}
		b := pending[0]
		pending = pending[1:]
		steps := []struct {
			op string
			f  func() error
		}{
			{opEnqueue, func() error { _, err := st.EnqueueBatch(ctx, run.ID, b.Seq); return err }},
			{opGetRun, func() error { _, err := st.GetRun(ctx, run.ID); return err }},
		}
		c := claim(i)
		steps = append(steps,
			struct {
				op string
				f  func() error
			}{opClaim, func() error { _, err := st.ClaimBatch(ctx, run.ID, b.Seq, c); return err }},
			struct {
				op string
				f  func() error
			}{opComplete, func() error {
				_, err := st.CompleteBatch(ctx, run.ID, b.Seq, c.Token, store.Result{RowsRead: 1000, RowsWritten: 1000})
				return err
			}},
		)
		total := appendShare
		for _, s := range steps {
			t := time.Now()
			if err := s.f(); err != nil {
				return StoreOpsCost{}, fmt.Errorf("%s of batch %d: %w", s.op, b.Seq, err)
			}
			d := time.Since(t)
			sums[s.op] += d
			total += d
		}
		perBatch = append(perBatch, total)
	}
	cost := StoreOpsCost{Ops: map[string]Seconds{}}
	var all time.Duration
	for op, d := range sums {
		cost.Ops[op] = Seconds(d / time.Duration(n))
		all += d
	}
	cost.PerBatch = Seconds(all / time.Duration(n))
	sort.Slice(perBatch, func(a, b int) bool { return perBatch[a] < perBatch[b] })
	cost.P50 = Seconds(perBatch[len(perBatch)/2])
	cost.P99 = Seconds(perBatch[len(perBatch)*99/100])

	// Parallel: plan and enqueue n batches of a new run untimed, then time
	// par goroutines claiming and completing them.
	if run, err = newRun(); err != nil {
		return cost, err
	}
	var all2 []store.Batch
	for len(all2) < n {
		bs, err := plan(&run, min(16, n-len(all2)))
		if err != nil {
			return cost, err
		}
		for _, b := range bs {
			if _, err := st.EnqueueBatch(ctx, run.ID, b.Seq); err != nil {
				return cost, err
			}
		}
		all2 = append(all2, bs...)
	}
	work := make(chan store.Batch, len(all2))
	for _, b := range all2 {
		work <- b
	}
	close(work)
	var wg sync.WaitGroup
	errs := make([]error, par)
	start := time.Now()
	for g := 0; g < par; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if _, err := st.GetRun(ctx, run.ID); err != nil {
					errs[g] = err
					return
				}
				c := claim(int(b.Seq))
				if _, err := st.ClaimBatch(ctx, run.ID, b.Seq, c); err != nil {
					errs[g] = fmt.Errorf("claim batch %d: %w", b.Seq, err)
					return
				}
				if _, err := st.CompleteBatch(ctx, run.ID, b.Seq, c.Token, store.Result{RowsRead: 1000, RowsWritten: 1000}); err != nil {
					errs[g] = fmt.Errorf("complete batch %d: %w", b.Seq, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return cost, err
		}
	}
	cost.ParallelPerSec = float64(n) / time.Since(start).Seconds()
	return cost, nil
}
