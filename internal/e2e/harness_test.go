package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// env is one isolated dripflow installation: an app database, a store, a
// queue and event channel of its own.
type env struct {
	t     *testing.T
	db    *gorm.DB
	rdb   *redis.Client
	st    store.Store
	queue string
	bus   *events.Bus
	ctl   *control.Controller
	log   *zap.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := gorm.Open(postgres.Open(testenv.PostgresURL(t)), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open app database: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := examples.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	bus := events.New(rdb, prefix+"events")
	return &env{
		t: t, db: db, rdb: rdb, st: st, queue: prefix + "q", bus: bus,
		ctl: &control.Controller{Store: st, Events: bus},
		log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
}

// start runs a scheduler and n workers until the test ends.
func (e *env) start(workers int) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sch, err := scheduler.New(scheduler.Config{
		Store: e.st, Redis: e.rdb, DB: e.db, Events: e.bus,
		Tasks:     tasks.Config{Queue: e.queue},
		LeaderKey: e.queue + ":leader", PresenceKey: e.queue + ":workers", Logger: e.log.Named("scheduler"),
		ReconcileInterval: time.Second, ReconcileGrace: time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); sch.Run(ctx) }()
	for i := 0; i < workers; i++ {
		w, err := worker.New(worker.Config{
			Store: e.st, Redis: e.rdb, DB: e.db, Events: e.bus, Queue: e.queue, PresenceKey: e.queue + ":workers",
			Concurrency: 4, ShutdownTimeout: 5 * time.Second, Logger: e.log.Named("worker"),
		})
		if err != nil {
			e.t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.Run(ctx) }()
	}
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitRun waits until the run reaches a terminal state.
func (e *env) waitRun(id int64, timeout time.Duration) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := e.st.GetRun(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.State.Terminal() {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d still %s after %s: %+v", id, r.State, timeout, r.Counters)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ = engine.DefaultRegistry
