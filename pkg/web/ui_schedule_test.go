package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
	"github.com/dripflow/dripflow/pkg/worker"
)

// A scheduled run's page offers Start now and Reschedule (and no Resume);
// both work. The workers page lists the workers' heartbeats.
func TestUIScheduledRunAndWorkers(t *testing.T) {
	e := newUIEnv(t, 0, func(o *web.Options) { o.PresenceKey = "" })
	c := e.client()
	c.login(uiAliceToken)
	later := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	r := e.createRun("alice", `{"note":"n"}`, func(n *store.NewRun) { n.StartAt = &later })
	path := fmt.Sprintf("/runs/%d", r.ID)
	page := c.get(path).body
	for _, want := range []string{path + `/start"`, path + `/reschedule"`, "Start now", "Reschedule"} {
		if !strings.Contains(page, want) {
			t.Errorf("scheduled run page lacks %q", want)
		}
	}
	if r := c.post(path, path+"/resume", nil); r.code != http.StatusSeeOther {
		t.Fatalf("resume: %d", r.code)
	}
	if body := c.get(path).body; !strings.Contains(body, "flash-error") || !strings.Contains(body, "reschedule") {
		t.Errorf("resume of a scheduled run: no error saying to start or reschedule it")
	}
	if got := e.run(r.ID); got.State != store.RunScheduled {
		t.Fatalf("resume of a scheduled run made it %s", got.State)
	}
	if res := c.post(path, path+"/reschedule", url.Values{"start_at": {"2098-05-06T07:08"}, "tz": {"UTC"}}); res.code != http.StatusSeeOther {
		t.Fatalf("reschedule: %d", res.code)
	}
	if got := e.run(r.ID); got.StartAt == nil || !got.StartAt.Equal(time.Date(2098, 5, 6, 7, 8, 0, 0, time.UTC)) {
		t.Fatalf("rescheduled start_at %v", got.StartAt)
	}
	if res := c.post(path, path+"/start", nil); res.code != http.StatusSeeOther {
		t.Fatalf("start: %d", res.code)
	}
	if got := e.run(r.ID); got.State != store.RunRunning {
		t.Fatalf("started run is %s", got.State)
	}

	presence := worker.NewPresence(e.rdb, "")
	t.Cleanup(func() { presence.Forget(context.Background(), "uitest:1") })
	if err := presence.Beat(context.Background(), worker.WorkerInfo{ID: "uitest:1", Concurrency: 4, StartedAt: time.Now(),
		LastHeartbeat: time.Now(), Batches: []worker.BatchRef{{RunID: r.ID, Seq: 3}}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	body := c.get("/workers").body
	for _, want := range []string{"uitest:1", "alive", fmt.Sprintf(`href="/runs/%d">%d/3</a>`, r.ID, r.ID)} {
		if !strings.Contains(body, want) {
			t.Errorf("workers page lacks %q:\n%s", want, body)
		}
	}
}
