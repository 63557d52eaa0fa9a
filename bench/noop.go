package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	// The baseline is asynq itself, used as a user would; dripflow's own
	// code reaches asynq only through pkg/tasks.
	"github.com/hibiken/asynq"

	"github.com/dripflow/dripflow/pkg/control"
)

// NoopResult is section 2: batches that do nothing, through dripflow with
// each store, against as many no-op tasks through plain asynq.
type NoopResult struct {
	Batches     int `json:"batches"`
	Concurrency int `json:"concurrency"`
	MaxInFlight int `json:"max_in_flight"`

	Asynq         NoopVariant `json:"asynq"`
	DripflowRedis NoopVariant `json:"dripflow_redis"`
	DripflowSQL   NoopVariant `json:"dripflow_sql"`
	// DripflowRedisInProc is DripflowRedis with the scheduler and the
	// worker inside the benchmark's process (the others run them as
	// processes).
	DripflowRedisInProc NoopVariant `json:"dripflow_redis_inproc"`
}

// NoopVariant is one way of running the batches.
type NoopVariant struct {
	Description string  `json:"description"`
	Wall        Seconds `json:"wall_s"`
	PerSec      float64 `json:"per_s"`
	// VsAsynq is PerSec divided by plain asynq's.
	VsAsynq float64 `json:"vs_asynq"`
	// Pipeline is how full the run kept the worker's slots.
	Pipeline *Pipeline `json:"pipeline,omitempty"`
	// Rounds are the wall times of every round; Wall is the fastest.
	Rounds []Seconds `json:"rounds_s"`
}

func (r *runner) noop(ctx context.Context) (*NoopResult, error) {
	n, conc := r.cfg.NoopBatches, r.cfg.NoopConcurrency
	r.logf("section 2: %d no-op batches, concurrency %d", n, conc)
	res := &NoopResult{Batches: n, Concurrency: conc, MaxInFlight: r.cfg.NoopInFlight}

	keep := func(dst *NoopVariant, round int, desc string, wall time.Duration) {
		rounds := append(dst.Rounds, Seconds(wall))
		if round == 0 || Seconds(wall) < dst.Wall {
			dst.Wall, dst.Description = Seconds(wall), desc
		}
		dst.Rounds = rounds
	}
	for round := 0; round < r.cfg.Repeat; round++ {
		if r.cfg.variant("asynq") {
			wall, err := r.plainAsynq(ctx, n, conc)
			if err != nil {
				return nil, fmt.Errorf("plain asynq: %w", err)
			}
			keep(&res.Asynq, round, fmt.Sprintf("plain asynq: %d tasks enqueued by 4 producers while a server of concurrency %d runs them", n, conc), wall)
			r.logf("  %-15s %8.2fs  %9.0f /s", "asynq", wall.Seconds(), float64(n)/wall.Seconds())
		}

		for _, v := range []struct {
			name       string
			redisStore bool
			shape      string
			dst        *NoopVariant
		}{
			{"dripflow-redis", true, ShapeProcesses, &res.DripflowRedis},
			{"dripflow-sql", false, ShapeProcesses, &res.DripflowSQL},
			{"dripflow-redis-inproc", true, ShapeInProcess, &res.DripflowRedisInProc},
		} {
			// 50,000 batches through the SQL store take minutes: they run
			// in the first round only.
			if !r.cfg.variant(v.name) || (round > 0 && !v.redisStore) {
				continue
			}
			de, err := r.dripflowEnv(ctx, "", v.redisStore)
			if err != nil {
				return nil, err
			}
			inFlight := r.cfg.NoopInFlight
			rr, pl, err := r.runDripflow(ctx, de, v.shape, conc, control.NewRun{
				Definition: defNoop, CreatedBy: "bench",
				Params:      []byte(fmt.Sprintf(`{"batches": %d}`, n)),
				MaxInFlight: &inFlight,
			})
			de.close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			if rr.Run.BatchesSucceeded != int64(n) {
				return nil, fmt.Errorf("%s: %d batches succeeded, want %d", v.name, rr.Run.BatchesSucceeded, n)
			}
			store := "Redis store"
			if !v.redisStore {
				store = "SQL store on PostgreSQL"
			}
			shape := "scheduler and worker as processes"
			if v.shape == ShapeInProcess {
				shape = "scheduler and worker inside the benchmark's process"
			}
			keep(v.dst, round, fmt.Sprintf("dripflow, %s: one run of %d no-op batches, %s, worker concurrency %d, max_in_flight %d", store, n, shape, conc, inFlight), rr.Wall)
			if v.dst.Wall == Seconds(rr.Wall) {
				v.dst.Pipeline = &pl
			}
			r.logf("  %-15s %8.2fs  %9.0f /s  %s", v.name, rr.Wall.Seconds(), float64(n)/rr.Wall.Seconds(), pl)
		}
	}
	for _, v := range []*NoopVariant{&res.Asynq, &res.DripflowRedis, &res.DripflowSQL, &res.DripflowRedisInProc} {
		if v.Wall > 0 {
			v.PerSec = float64(n) / v.Wall.Seconds()
		}
	}
	for _, v := range []*NoopVariant{&res.Asynq, &res.DripflowRedis, &res.DripflowSQL, &res.DripflowRedisInProc} {
		if res.Asynq.PerSec > 0 {
			v.VsAsynq = v.PerSec / res.Asynq.PerSec
		}
	}
	return res, nil
}

// plainAsynq enqueues n no-op tasks with asynq's defaults from 4 producers
// while a server of concurrency conc runs them, and returns the time from
// the first enqueue to the last task done.
func (r *runner) plainAsynq(ctx context.Context, n, conc int) (time.Duration, error) {
	_, rdb, release, err := r.svc.redisDB(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	const queue = "bench"
	var done atomic.Int64
	finished := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: conc,
		Queues:      map[string]int{queue: 1},
		// The interval dripflow's worker polls an empty queue at
		// (tasks.ServerConfig.PollInterval; asynq's default is 1s).
		TaskCheckInterval: 10 * time.Millisecond,
		LogLevel:          asynq.ErrorLevel,
	})
	mux := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	const producers = 4
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += producers {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("noop", nil), asynq.Queue(queue)); err != nil {
					errs[p] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("enqueue: %w", err)
		}
	}
	select {
	case <-finished:
	case <-time.After(r.cfg.Timeout):
		return 0, fmt.Errorf("%d of %d tasks done after %s", done.Load(), n, r.cfg.Timeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return time.Since(start), nil
}
