package scheduler_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// healthItem is the model of the held backfill.
type healthItem struct {
	ID      int64 `gorm:"primaryKey;autoIncrement:false"`
	Touched int
}

func (healthItem) TableName() string { return "health_items" }

// A run whose definition's sql check reads a flag table on PostgreSQL:
// flipping the flag mid-run holds it — the batches in flight finish, no
// new batch is planned or started, the run stays running and reads held
// (store, timeline, metrics) — and flipping it back resumes it; every key
// is processed exactly once.
func TestHealthHoldAndResumeOnPostgres(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db := st.DB()
	const items, flipAt = 1000, 95
	for _, stmt := range []string{
		"CREATE TABLE maintenance (paused BOOLEAN NOT NULL)",
		"INSERT INTO maintenance VALUES (false)",
		"CREATE TABLE health_items (id BIGINT PRIMARY KEY, touched INT NOT NULL DEFAULT 0)",
		"INSERT INTO health_items (id) SELECT generate_series(1, " + strconv.Itoa(items) + ")",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	const def = "held_backfill"
	reg := engine.NewRegistry()
	j, err := backfills.New(backfills.Definition[healthItem, struct{}]{
		Name: def,
		ProcessElement: func(ctx context.Context, el *backfills.Element[healthItem, struct{}]) error {
			time.Sleep(3 * time.Millisecond) // batches that take a while, as real ones do
			if el.Record.ID == flipAt {
				// The operator's switch, flipped from outside the batch.
				if err := db.Exec("UPDATE maintenance SET paused = true").Error; err != nil {
					return err
				}
			}
			return el.DB.Model(el.Record).Update("touched", gorm.Expr("touched + 1")).Error
		},
		Options: backfills.Options{BatchSize: 10, MaxInFlight: 2, MaxAttempts: 1, HealthChecks: []store.HealthCheck{
			{Kind: store.HealthSQL, Name: "maintenance", Query: "SELECT NOT paused FROM maintenance"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(j); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	bus := events.New(rdb, prefix+"events")
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	sch, err := scheduler.New(scheduler.Config{
		Store: st, Redis: rdb, DB: db, Registry: reg, Events: bus,
		Tasks: tasks.Config{Queue: prefix + "q"}, LeaderKey: prefix + "leader", PresenceKey: prefix + "workers",
		PollInterval: 100 * time.Millisecond, LeaderTTL: time.Second, HealthInterval: 200 * time.Millisecond,
		Logger: log.Named("scheduler"),
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Store: st, Redis: rdb, DB: db, Registry: reg, Events: bus, Queue: prefix + "q", PresenceKey: prefix + "workers",
		Concurrency: 2, ShutdownTimeout: 5 * time.Second, Logger: log.Named("worker"),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { sch.Run(runCtx); done <- struct{}{} }()
	go func() { w.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	ctl := &control.Controller{Store: st, Registry: reg, Events: bus}
	r, err := ctl.CreateRun(ctx, control.NewRun{Definition: def, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Options.HealthChecks) != 1 || r.Options.HealthChecks[0].Kind != store.HealthSQL {
		t.Fatalf("run's checks %+v, want the definition's sql check", r.Options.HealthChecks)
	}
	runID := strconv.FormatInt(r.ID, 10)

	// Held: the run says why, and its batches in flight drain.
	var held store.Run
	waitFor(t, 20*time.Second, "the run held with nothing in flight", func() bool {
		held = getRun(t, st, r.ID)
		return held.Held != nil && held.InFlight() == 0
	})
	if held.State != store.RunRunning || held.Held.Reason != "sql check maintenance returned false" || held.Held.Check != "maintenance" {
		t.Fatalf("held run: %s, %+v", held.State, held.Held)
	}
	if held.PlanDone || held.BatchesSucceeded >= items/10 {
		t.Fatalf("the run got to the end before the hold: %+v", held.Counters)
	}
	if g, ok := metricValue(t, "dripflow_run_health_held", map[string]string{"run": runID, "definition": def, "check": "maintenance"}); !ok || g != 1 {
		t.Errorf("dripflow_run_health_held = %v (%v) while held, want 1", g, ok)
	}
	// Nothing new is planned or started for several check intervals.
	batches := listBatches(t, st, r.ID)
	time.Sleep(1200 * time.Millisecond)
	after := getRun(t, st, r.ID)
	if after.BatchesTotal() != held.BatchesTotal() || after.InFlight() != 0 || after.State != store.RunRunning || after.Held == nil {
		t.Fatalf("while held: %s %+v (held %+v), was %+v", after.State, after.Counters, after.Held, held.Counters)
	}
	for i, b := range listBatches(t, st, r.ID) {
		if b.State != batches[i].State || !b.UpdatedAt.Equal(batches[i].UpdatedAt) {
			t.Fatalf("batch %d changed while held: %+v, was %+v", b.Seq, b, batches[i])
		}
	}

	// Healthy again: planning resumes and the run ends.
	if err := db.Exec("UPDATE maintenance SET paused = false").Error; err != nil {
		t.Fatal(err)
	}
	var end store.Run
	waitFor(t, 30*time.Second, "the run ended", func() bool {
		end = getRun(t, st, r.ID)
		return end.State.Terminal()
	})
	if end.State != store.RunSucceeded || end.RowsRead != items || end.Held != nil {
		t.Fatalf("run ended %s with %d rows, held %+v: %s", end.State, end.RowsRead, end.Held, end.Error)
	}
	var wrong int64
	if err := db.Raw("SELECT COUNT(*) FROM health_items WHERE touched <> 1").Scan(&wrong).Error; err != nil || wrong != 0 {
		t.Fatalf("%d items not touched exactly once (%v)", wrong, err)
	}
	for _, b := range listBatches(t, st, r.ID) {
		if b.Attempts != 1 {
			t.Errorf("batch %d took %d attempts", b.Seq, b.Attempts)
		}
	}
	evs, err := st.ListRunEvents(ctx, r.ID, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		t.Fatal(err)
	}
	var heldAt, okAt int
	for i, ev := range evs {
		switch {
		case ev.Kind == store.EventThrottled && strings.HasPrefix(ev.Message, "held: sql check maintenance returned false"):
			heldAt = i + 1
		case strings.HasPrefix(ev.Message, "health ok, planning resumed"):
			okAt = i + 1
		}
	}
	if heldAt == 0 || okAt <= heldAt {
		t.Errorf("timeline without a hold followed by its release: %+v", evs)
	}
	if s, _ := metricValue(t, "dripflow_run_health_held_seconds_total", map[string]string{"definition": def}); s < 0.5 {
		t.Errorf("dripflow_run_health_held_seconds_total{definition=%q} = %v, want most of the 1.2 s held", def, s)
	}
	waitFor(t, 5*time.Second, "the held gauge dropped", func() bool {
		_, ok := metricValue(t, "dripflow_run_health_held", map[string]string{"run": runID})
		return !ok
	})
}

// A check that cannot run where it is (autovacuum on SQLite) fails the
// run, saying why, before any batch.
func TestHealthUnsupportedCheckFailsRun(t *testing.T) {
	ctx := context.Background()
	url := testenv.SQLiteURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.DB().AutoMigrate(&healthItem{}); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Create(&healthItem{ID: 1}).Error; err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	j, err := backfills.New(backfills.Definition[healthItem, struct{}]{
		Name:           "vacuum_watcher",
		ProcessElement: func(ctx context.Context, el *backfills.Element[healthItem, struct{}]) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(j); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := testenv.Redis(t)
	bus := events.New(rdb, prefix+"events")
	sch, err := scheduler.New(scheduler.Config{
		Store: st, Redis: rdb, DB: st.DB(), Registry: reg, Events: bus,
		Tasks: tasks.Config{Queue: prefix + "q"}, LeaderKey: prefix + "leader", PresenceKey: prefix + "workers",
		PollInterval: 100 * time.Millisecond, LeaderTTL: time.Second, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sch.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	ctl := &control.Controller{Store: st, Registry: reg, Events: bus}
	r, err := ctl.CreateRun(ctx, control.NewRun{Definition: "vacuum_watcher", CreatedBy: "test",
		HealthChecks: []store.HealthCheck{{Kind: store.HealthAutovacuum, Table: "health_items"}}})
	if err != nil {
		t.Fatal(err)
	}
	var end store.Run
	waitFor(t, 10*time.Second, "the run ended", func() bool {
		end = getRun(t, st, r.ID)
		return end.State.Terminal()
	})
	if end.State != store.RunFailed || !strings.Contains(end.Error, "cannot check health") || !strings.Contains(end.Error, "autovacuum checks need PostgreSQL") ||
		end.BatchesTotal() != 0 {
		t.Fatalf("run %s (%q) with %d batches; want failed before any batch, saying autovacuum needs PostgreSQL", end.State, end.Error, end.BatchesTotal())
	}
}

func getRun(t *testing.T, st store.Store, id int64) store.Run {
	t.Helper()
	r, err := st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func listBatches(t *testing.T, st store.Store, id int64) []store.Batch {
	t.Helper()
	page, err := st.ListBatches(context.Background(), id, store.BatchFilter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// metricValue reads the first series of the named metric whose labels
// include want, from the default registry the scheduler registers in.
func metricValue(t *testing.T, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}
