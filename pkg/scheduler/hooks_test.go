package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/worker"
)

// hookThing is the model the hooked backfills run over.
type hookThing struct {
	ID      int64 `gorm:"primaryKey;autoIncrement:false"`
	Poison  bool
	Touched int
}

func (hookThing) TableName() string { return "hook_things" }

// hookEnv is a store, an app database, Redis, and what the tests run there.
type hookEnv struct {
	t      *testing.T
	st     store.Store
	db     *gorm.DB
	rdb    *redis.Client
	prefix string
	reg    *engine.Registry
	ctl    *control.Controller
	hooks  *hookCalls
	rcv    *webhookReceiver
}

// onStores runs test on the SQL store (SQLite, the app tables in the same
// database) and on the Redis store (app tables in SQLite).
func onStores(t *testing.T, test func(t *testing.T, e *hookEnv)) {
	for _, kind := range []string{"sql", "redis"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			url := testenv.SQLiteURL(t)
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatal(err)
			}
			sq, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sq.Close() })
			rdb, prefix := testenv.Redis(t)
			e := &hookEnv{t: t, st: sq, db: sq.DB(), rdb: rdb, prefix: prefix, reg: engine.NewRegistry(), hooks: &hookCalls{}}
			if kind == "redis" {
				if e.st, err = redisstore.New(rdb, redisstore.Config{Prefix: prefix}); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.db.AutoMigrate(&hookThing{}); err != nil {
				t.Fatal(err)
			}
			e.ctl = &control.Controller{Store: e.st, Registry: e.reg, Events: events.New(rdb, prefix+"events")}
			e.rcv = newWebhookReceiver(t, "k3y")
			test(t, e)
		})
	}
}

// seed puts n things in the table, the ids in poison poisoned.
func (e *hookEnv) seed(n int, poison ...int64) {
	e.t.Helper()
	if err := e.db.Exec("DELETE FROM hook_things").Error; err != nil {
		e.t.Fatal(err)
	}
	bad := map[int64]bool{}
	for _, id := range poison {
		bad[id] = true
	}
	for i := int64(1); i <= int64(n); i++ {
		if err := e.db.Create(&hookThing{ID: i, Poison: bad[i]}).Error; err != nil {
			e.t.Fatal(err)
		}
	}
}

// define registers a backfill over hook_things whose hooks are those of
// def (its Name, hooks and webhooks; processing is set here).
func (e *hookEnv) define(def backfills.Definition[hookThing, struct{}]) {
	e.t.Helper()
	def.ProcessElement = func(_ context.Context, el *backfills.Element[hookThing, struct{}]) error {
		if el.Record.Poison {
			return fmt.Errorf("poison thing %d", el.Record.ID)
		}
		return el.DB.Model(el.Record).Update("touched", gorm.Expr("touched + 1")).Error
	}
	j, err := backfills.New(def)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.reg.Register(j); err != nil {
		e.t.Fatal(err)
	}
}

// scheduler starts a scheduler; stop ends it and waits.
func (e *hookEnv) scheduler(n notify.Config) (stop func()) {
	e.t.Helper()
	if n.Backoff == 0 {
		n.Backoff = 20 * time.Millisecond
	}
	sch, err := scheduler.New(scheduler.Config{
		Store: e.st, Redis: e.rdb, DB: e.db, Registry: e.reg, Events: events.New(e.rdb, e.prefix+"events"),
		Tasks: tasks.Config{Queue: e.prefix + "q"}, LeaderKey: e.prefix + "leader", PresenceKey: e.prefix + "workers",
		PollInterval: 100 * time.Millisecond, LeaderTTL: time.Second, Logger: zaptest.NewLogger(e.t), Notify: n,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sch.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

func (e *hookEnv) worker() {
	e.t.Helper()
	w, err := worker.New(worker.Config{
		Store: e.st, Redis: e.rdb, DB: e.db, Registry: e.reg, Events: events.New(e.rdb, e.prefix+"events"),
		Queue: e.prefix + "q", PresenceKey: e.prefix + "workers", Concurrency: 2, ShutdownTimeout: 5 * time.Second,
		Logger: zaptest.NewLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *hookEnv) start(def string) store.Run {
	e.t.Helper()
	size, attempts := 10, 1
	r, err := e.ctl.CreateRun(context.Background(), control.NewRun{Definition: def, CreatedBy: "test", BatchSize: &size, MaxAttempts: &attempts})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *hookEnv) waitRun(id int64) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.st.GetRun(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.State.Terminal() {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d still %s after 20s", id, r.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookEvents waits until the run's timeline has n hook events and returns
// their messages by key.
func (e *hookEnv) hookEvents(id int64, n int) map[string]string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := e.st.ListRunEvents(context.Background(), id, store.EventFilter{Limit: store.MaxEventLimit})
		if err != nil {
			e.t.Fatal(err)
		}
		got := map[string]string{}
		for _, ev := range evs {
			if ev.Kind == store.EventHook {
				got[ev.Key] = ev.Message
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d has %d hook events after 20s, want %d: %v", id, len(got), n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookCalls records definition hook calls.
type hookCalls struct {
	mu    sync.Mutex
	calls []string // "OnComplete <key>"
	infos []notify.RunInfo
}

func (h *hookCalls) fn(name string, then func(ctx context.Context) error) notify.HookFunc {
	return func(ctx context.Context, info notify.RunInfo) error {
		h.mu.Lock()
		h.calls = append(h.calls, name+" "+info.Key)
		h.infos = append(h.infos, info)
		h.mu.Unlock()
		if then != nil {
			return then(ctx)
		}
		return nil
	}
}

func (h *hookCalls) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// webhookReceiver checks each delivery's signature and counts deliveries
// by path and event.
type webhookReceiver struct {
	t      *testing.T
	secret string
	url    string
	mu     sync.Mutex
	got    []string // "/path event delivery-id"
	bodies []notify.Payload
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	rc := &webhookReceiver{t: t, secret: secret}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(rc.secret, r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), body, time.Minute, time.Now()); err != nil {
		rc.t.Errorf("delivery to %s: %v", r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("delivery to %s: %v", r.URL.Path, err)
	}
	if p.DeliveryID != r.Header.Get(notify.HeaderDelivery) {
		rc.t.Errorf("payload's delivery id %q, header's %q", p.DeliveryID, r.Header.Get(notify.HeaderDelivery))
	}
	rc.mu.Lock()
	rc.got = append(rc.got, r.URL.Path+" "+string(p.Event)+" "+p.DeliveryID)
	rc.bodies = append(rc.bodies, p)
	rc.mu.Unlock()
}

func (rc *webhookReceiver) deliveries() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// OnStart and OnComplete run exactly once per run, also with two
// schedulers, many passes, and a scheduler restarted after the run ended;
// each webhook gets each event it wants once, signed.
func TestHooksRunOncePerRun(t *testing.T) {
	onStores(t, func(t *testing.T, e *hookEnv) {
		e.seed(25)
		e.define(backfills.Definition[hookThing, struct{}]{
			Name:       "hooked",
			OnStart:    e.hooks.fn("OnStart", nil),
			OnComplete: e.hooks.fn("OnComplete", nil),
			OnError:    e.hooks.fn("OnError", nil),
			Webhooks:   []notify.Webhook{{URL: e.rcv.url + "/def", Events: []notify.Event{notify.Started, notify.Succeeded, notify.Failed}}},
		})
		n := notify.Config{Secret: "k3y", Webhooks: []notify.Webhook{{URL: e.rcv.url + "/global"}}}
		stop1 := e.scheduler(n)
		stop2 := e.scheduler(n)
		e.worker()
		r := e.start("hooked")
		if got := e.waitRun(r.ID); got.State != store.RunSucceeded {
			t.Fatalf("run %s: %s", got.State, got.Error)
		}
		// hook:start, hook:complete, the definition's webhook of the start
		// and of the end, the global one of the end.
		msgs := e.hookEvents(r.ID, 5)
		time.Sleep(time.Second) // ten more passes
		end, _ := e.st.GetRun(context.Background(), r.ID)
		endKey := notify.Key(end, notify.Succeeded)
		want := []string{"OnStart " + notify.Key(end, notify.Started), "OnComplete " + endKey}
		if diff := cmp.Diff(want, e.hooks.list()); diff != "" {
			t.Errorf("hook calls (-want +got):\n%s", diff)
		}
		wantDeliveries := []string{
			"/def started " + notify.Key(end, notify.Started),
			"/def succeeded " + endKey, "/global succeeded " + endKey,
		}
		if diff := cmp.Diff(wantDeliveries, sorted(e.rcv.deliveries())); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
		for key, msg := range msgs {
			if strings.HasPrefix(key, "webhook:") && !strings.Contains(msg, "delivered, HTTP 200") {
				t.Errorf("timeline %s: %q", key, msg)
			}
		}
		if msg := msgs["hook:complete:"+fmt.Sprint(end.FinishedAt.UnixMicro())]; !strings.HasPrefix(msg, "OnComplete ran in") {
			t.Errorf("timeline of OnComplete: %q (all: %v)", msg, msgs)
		}

		// Restarted schedulers find everything done on the timeline.
		stop1()
		stop2()
		e.scheduler(n)
		time.Sleep(2 * time.Second)
		if got := e.hooks.list(); len(got) != 2 {
			t.Errorf("after a restart the hooks ran again: %v", got)
		}
		if got := e.rcv.deliveries(); len(got) != 3 {
			t.Errorf("after a restart the webhooks were sent again: %v", got)
		}

		// A run cancelled before it started: webhooks hear of it, neither
		// OnComplete nor OnError runs.
		at := time.Now().Add(time.Hour)
		later, err := e.ctl.CreateRun(context.Background(), control.NewRun{Definition: "hooked", CreatedBy: "test", StartAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ctl.Cancel(context.Background(), later.ID); err != nil {
			t.Fatal(err)
		}
		e.hookEvents(later.ID, 1)
		time.Sleep(500 * time.Millisecond)
		if got := e.hooks.list(); len(got) != 2 {
			t.Errorf("a cancelled run called hooks: %v", got)
		}
		var cancelled []string
		for _, d := range e.rcv.deliveries() {
			if strings.Contains(d, fmt.Sprintf("run-%d-", later.ID)) {
				cancelled = append(cancelled, d[:strings.LastIndex(d, " ")])
			}
		}
		if diff := cmp.Diff([]string{"/global cancelled"}, cancelled); diff != "" {
			t.Errorf("deliveries of the cancelled run (-want +got):\n%s", diff)
		}
	})
}

// A failed run calls OnError once with its first batch error, and the
// webhooks say failed.
func TestHooksOnError(t *testing.T) {
	onStores(t, func(t *testing.T, e *hookEnv) {
		e.seed(30, 14)
		e.define(backfills.Definition[hookThing, struct{}]{
			Name:       "hooked",
			OnComplete: e.hooks.fn("OnComplete", nil),
			OnError:    e.hooks.fn("OnError", nil),
		})
		e.scheduler(notify.Config{Secret: "k3y", Webhooks: []notify.Webhook{{URL: e.rcv.url + "/global", Format: notify.JSON}}})
		e.worker()
		r := e.start("hooked")
		end := e.waitRun(r.ID)
		if end.State != store.RunFailed {
			t.Fatalf("run %s, want failed", end.State)
		}
		e.hookEvents(r.ID, 2)
		time.Sleep(500 * time.Millisecond)
		if diff := cmp.Diff([]string{"OnError " + notify.Key(end, notify.Failed)}, e.hooks.list()); diff != "" {
			t.Fatalf("hook calls (-want +got):\n%s", diff)
		}
		e.hooks.mu.Lock()
		info := e.hooks.infos[0]
		e.hooks.mu.Unlock()
		if !strings.Contains(info.FirstBatchError, "poison thing 14") || info.Run.BatchesFailed != 1 || info.Run.State != store.RunFailed || info.Duration <= 0 {
			t.Errorf("OnError's info: first error %q, failed %d, state %s, duration %s", info.FirstBatchError, info.Run.BatchesFailed, info.Run.State, info.Duration)
		}
		// The scheduler's own notes sit beside the hooks' on the timeline.
		evs, err := e.st.ListRunEvents(context.Background(), r.ID, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[store.EventKind]int{}
		for _, ev := range evs {
			kinds[ev.Kind]++
		}
		if kinds[store.EventStarted] != 1 || kinds[store.EventFinished] != 1 || kinds[store.EventHook] != 2 {
			t.Errorf("timeline kinds %v, want one started, one finished, two hook", kinds)
		}
		d := e.rcv.deliveries()
		if len(d) != 1 || !strings.HasPrefix(d[0], "/global failed ") {
			t.Fatalf("deliveries %v, want one failed", d)
		}
		e.rcv.mu.Lock()
		p := e.rcv.bodies[0]
		e.rcv.mu.Unlock()
		if p.BatchesFailed != 1 || p.Batches != 3 || p.RowsWritten != 20 || !strings.Contains(p.FirstBatchError, "poison thing 14") || p.FinishedAt == nil {
			t.Errorf("payload %+v", p)
		}
	})
}

// A hook that fails, panics or overruns its timeout is recorded on the
// timeline; the run's outcome stays, and the scheduler goes on.
func TestHookFailuresAreRecorded(t *testing.T) {
	onStores(t, func(t *testing.T, e *hookEnv) {
		e.seed(5)
		e.define(backfills.Definition[hookThing, struct{}]{
			Name:       "hooked",
			OnStart:    e.hooks.fn("OnStart", func(context.Context) error { return errors.New("no Slack today") }),
			OnComplete: e.hooks.fn("OnComplete", func(context.Context) error { panic("hook bug") }),
		})
		e.define(backfills.Definition[hookThing, struct{}]{
			Name: "slow_hook",
			OnComplete: e.hooks.fn("OnComplete", func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			}),
		})
		e.scheduler(notify.Config{HookTimeout: 300 * time.Millisecond})
		e.worker()
		r := e.start("hooked")
		if end := e.waitRun(r.ID); end.State != store.RunSucceeded {
			t.Fatalf("run %s, want succeeded despite its hooks", end.State)
		}
		msgs := e.hookEvents(r.ID, 2)
		if msg := msgs["hook:start"]; msg != "OnStart failed: no Slack today" {
			t.Errorf("timeline of OnStart: %q", msg)
		}
		var complete string
		for k, v := range msgs {
			if strings.HasPrefix(k, "hook:complete:") {
				complete = v
			}
		}
		if !strings.HasPrefix(complete, "OnComplete failed: panic: hook bug") {
			t.Errorf("timeline of the panicking OnComplete: %q", complete)
		}
		// The scheduler is still there: the next run ends, its hook timed out.
		r2 := e.start("slow_hook")
		if end := e.waitRun(r2.ID); end.State != store.RunSucceeded {
			t.Fatalf("second run %s", end.State)
		}
		for k, v := range e.hookEvents(r2.ID, 1) {
			if !strings.HasPrefix(k, "hook:complete:") || !strings.Contains(v, "OnComplete timed out: did not return within 300ms") {
				t.Errorf("timeline of the slow hook: %s = %q", k, v)
			}
		}
	})
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// A webhook URL that is not http(s) stops the scheduler before it starts,
// saying which and why, without the URL's path.
func TestSchedulerRefusesBadWebhooks(t *testing.T) {
	st, rdb, _ := newRedisStore(t)
	_, err := scheduler.New(scheduler.Config{Store: st, Redis: rdb, Notify: notify.Config{
		Webhooks: []notify.Webhook{{URL: "https://ok.example/a"}, {URL: "file:///etc/SECRET"}},
	}})
	if err == nil || !strings.Contains(err.Error(), `scheduler: notifications: webhook 2 (`) || !strings.Contains(err.Error(), `got scheme "file"`) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("New = %v, want the second webhook refused, its path not shown", err)
	}
}
