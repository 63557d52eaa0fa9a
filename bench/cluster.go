package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/worker"
)

// cluster is dripflow running inside the benchmark's process: one scheduler
// and one worker on a store, an application database and a Redis database
// of their own, as cmd/scheduler and cmd/worker would run them.
type cluster struct {
	st  store.Store
	ctl *control.Controller

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type clusterConfig struct {
	Store    store.Store
	DB       *gorm.DB // application database; the SQL store's own for same-transaction checkpoints
	Redis    *redis.Client
	Registry *engine.Registry
	// Concurrency is the worker's number of batches at once.
	Concurrency int
	Logger      *zap.Logger
}

// startCluster starts the scheduler and the worker and returns once the
// scheduler leads, so that a run created next is planned at once.
func startCluster(ctx context.Context, c clusterConfig) (*cluster, error) {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	bus := events.New(c.Redis, "")
	sch, err := scheduler.New(scheduler.Config{
		Store: c.Store, Redis: c.Redis, DB: c.DB, Registry: c.Registry, Events: bus,
		Logger: c.Logger.Named("scheduler"),
	})
	if err != nil {
		return nil, err
	}
	w, err := worker.New(worker.Config{
		Store: c.Store, Redis: c.Redis, DB: c.DB, Registry: c.Registry, Events: bus,
		Concurrency: c.Concurrency, ShutdownTimeout: 10 * time.Second,
		Logger: c.Logger.Named("worker"),
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cl := &cluster{st: c.Store, ctl: &control.Controller{Store: c.Store, Registry: c.Registry, Events: bus}, cancel: cancel}
	cl.wg.Add(2)
	go func() { defer cl.wg.Done(); sch.Run(rctx) }()
	go func() { defer cl.wg.Done(); w.Run(rctx) }()
	deadline := time.Now().Add(15 * time.Second)
	for !sch.Leading() {
		if time.Now().After(deadline) {
			cl.stop()
			return nil, errors.New("scheduler did not lead within 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cl, nil
}

// stop stops the scheduler and the worker and waits for them.
func (c *cluster) stop() {
	c.cancel()
	c.wg.Wait()
}

// runResult is one run measured from creation to its end.
type runResult struct {
	Run store.Run
	// Wall is from just before CreateRun to the run's FinishedAt.
	Wall time.Duration
	// FirstBatch is from CreateRun returning to batch 1's StartedAt (its
	// claim by a worker).
	FirstBatch time.Duration
	// WorkerBusy is the time the worker's slots spent on the run's batch
	// tasks, by the worker's own counter (0: not measured).
	WorkerBusy time.Duration
}

// runToEnd creates a run and waits until it ends; a run that does not
// succeed is an error.
func runToEnd(ctx context.Context, ctl *control.Controller, st store.Store, n control.NewRun, timeout time.Duration) (runResult, error) {
	start := time.Now()
	r, err := ctl.CreateRun(ctx, n)
	if err != nil {
		return runResult{}, fmt.Errorf("create run of %s: %w", n.Definition, err)
	}
	created := time.Now()
	r, err = waitRun(ctx, st, r.ID, timeout)
	if err != nil {
		return runResult{}, err
	}
	res := runResult{Run: r, Wall: r.FinishedAt.Sub(start)}
	if b, err := st.GetBatch(ctx, r.ID, 1); err == nil && b.StartedAt != nil {
		res.FirstBatch = b.StartedAt.Sub(created)
	}
	if r.State != store.RunSucceeded {
		return res, fmt.Errorf("run %d of %s ended %s: %s (%+v)", r.ID, n.Definition, r.State, r.Error, r.Counters)
	}
	return res, nil
}

// waitRun polls the run until it is in a terminal state.
func waitRun(ctx context.Context, st store.Store, id int64, timeout time.Duration) (store.Run, error) {
	deadline := time.Now().Add(timeout)
	for {
		r, err := st.GetRun(ctx, id)
		if err != nil {
			return r, fmt.Errorf("wait for run %d: %w", id, err)
		}
		if r.State.Terminal() {
			return r, nil
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("run %d still %s after %s (%+v)", id, r.State, timeout, r.Counters)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
