package e2e

import (
	"context"
	"encoding/json"
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

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/store"
)

// notifyReceiver is a webhook receiver as a user would write one: it
// verifies each delivery's signature and timestamp and records it; it also
// records the calls e2edefs.Notified's hooks report.
type notifyReceiver struct {
	t      *testing.T
	secret string
	url    string

	mu         sync.Mutex
	deliveries []string // "<path> <event> <run id>"
	ids        map[string]int
	payloads   map[string]notify.Payload // by "<path> <event> <run id>"
	hooks      []string                  // "<name> <key>"
}

func newNotifyReceiver(t *testing.T, secret string) *notifyReceiver {
	rc := &notifyReceiver{t: t, secret: secret, ids: map[string]int{}, payloads: map[string]notify.Payload{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	rc.url = srv.URL
	return rc
}

func (rc *notifyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if name, ok := strings.CutPrefix(r.URL.Path, "/hook/"); ok {
		rc.hooks = append(rc.hooks, name+" "+string(body))
		return
	}
	if err := notify.Verify(rc.secret, r.Header.Get(notify.HeaderSignature), r.Header.Get(notify.HeaderTimestamp), body, 5*time.Minute, time.Now()); err != nil {
		rc.t.Errorf("delivery to %s refused: %v", r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("delivery to %s: %v: %s", r.URL.Path, err, body)
		return
	}
	id := r.Header.Get(notify.HeaderDelivery)
	if id == "" || id != p.DeliveryID {
		rc.t.Errorf("delivery header %q, payload's delivery_id %q", id, p.DeliveryID)
	}
	rc.ids[r.URL.Path+" "+id]++
	k := fmt.Sprintf("%s %s %s", r.URL.Path, p.Event, p.RunID)
	rc.deliveries = append(rc.deliveries, k)
	rc.payloads[k] = p
}

// of returns the deliveries and hook calls about run id, sorted.
func (rc *notifyReceiver) of(id int64) (deliveries, hooks []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, d := range rc.deliveries {
		if strings.HasSuffix(d, fmt.Sprintf(" %d", id)) {
			deliveries = append(deliveries, strings.TrimSuffix(d, fmt.Sprintf(" %d", id)))
		}
	}
	for _, h := range rc.hooks {
		if strings.Contains(h, fmt.Sprintf(" run-%d-", id)) {
			name, _, _ := strings.Cut(h, " ")
			hooks = append(hooks, name)
		}
	}
	sort.Strings(deliveries)
	sort.Strings(hooks)
	return deliveries, hooks
}

func (rc *notifyReceiver) payload(key string) notify.Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.payloads[key]
}

// hookKeys returns the hook keys on the run's timeline.
func (c *cluster) hookKeys(id int64) []string {
	c.t.Helper()
	evs, err := c.st.ListRunEvents(context.Background(), id, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		c.t.Fatal(err)
	}
	var keys []string
	for _, ev := range evs {
		if ev.Kind == store.EventHook {
			keys = append(keys, ev.Key)
		}
	}
	return keys
}

// Webhooks and hooks through real scheduler and worker processes: a
// backfill that succeeds while its scheduler is SIGKILLed and replaced
// mid-run, and one that fails. Each webhook gets each event once, signed,
// with the run's numbers; each hook runs once.
func TestProcessNotifications(t *testing.T) {
	c := newCluster(t)
	rc := newNotifyReceiver(t, "e2e-s3cret")
	c.env = append(c.env,
		"DRIPFLOW_WEBHOOK_URLS="+rc.url+"/global",
		"DRIPFLOW_WEBHOOK_SECRET=e2e-s3cret",
		"DRIPFLOW_WEBHOOK_EVENTS=started,succeeded,failed,cancelled",
		"DRIPFLOW_PUBLIC_URL=https://dripflow.example.com/ops",
		"E2E_HOOK_URL="+rc.url,
		"E2E_DEF_WEBHOOK_URL="+rc.url+"/def",
	)
	const items, size = 3000, 100
	c.seedItems(items)
	sch := c.scheduler()
	c.worker(2)

	// 30 batches of 150 ms, two at a time: a couple of seconds to kill
	// the scheduler in.
	r := c.createRun(control.NewRun{Definition: "e2e_notified", BatchSize: ptr(size), MaxInFlight: ptr(2), Params: json.RawMessage(`{"sleep_ms":150}`)})
	// The start is notified and recorded before the kill, so the next
	// scheduler must not notify it again.
	c.waitFor("the start's hook and webhook recorded on the timeline", time.Minute, func() bool {
		return len(c.hookKeys(r.ID)) >= 2
	})
	if got := c.run(r.ID); got.State != store.RunRunning || got.PlanDone && got.InFlight() == 0 {
		t.Fatalf("run %s before the scheduler was killed; the test wants it mid-run", got.State)
	}
	sch.kill(t)
	c.scheduler()
	end := c.waitDone(r.ID, 2*time.Minute)
	if end.State != store.RunSucceeded {
		t.Fatalf("run %s: %s", end.State, end.Error)
	}
	// started: hook + global; end: hook + global + the definition's.
	c.waitFor("the end's notifications recorded", time.Minute, func() bool { return len(c.hookKeys(r.ID)) >= 5 })
	time.Sleep(2 * time.Second) // passes and events that must not notify again
	deliveries, hooks := rc.of(r.ID)
	if diff := cmp.Diff([]string{"/def succeeded", "/global started", "/global succeeded"}, deliveries); diff != "" {
		t.Errorf("deliveries of the run whose scheduler was replaced (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"complete", "start"}, hooks); diff != "" {
		t.Errorf("hook calls (-want +got):\n%s", diff)
	}
	p := rc.payload(fmt.Sprintf("/global succeeded %d", r.ID))
	want := notify.Payload{
		Event: notify.Succeeded, DeliveryID: notify.Key(end, notify.Succeeded), RunID: fmt.Sprint(r.ID),
		Definition: "e2e_notified", Kind: "backfill", State: "succeeded", CreatedBy: "e2e",
		Total: items, RowsRead: items, RowsWritten: items, Batches: items / size, BatchesSucceeded: items / size,
		StartedAt: end.StartedAt, FinishedAt: end.FinishedAt, DurationMS: end.FinishedAt.Sub(*end.StartedAt).Milliseconds(),
		URL: fmt.Sprintf("https://dripflow.example.com/ops/runs/%d", r.ID),
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("succeeded payload (-want +got):\n%s", diff)
	}

	// A failing run: OnError once, failed once to each webhook, with the
	// first batch's error.
	if err := c.db.Model(&e2edefs.Item{}).Where("id = ?", 1234).Update("poison", true).Error; err != nil {
		t.Fatal(err)
	}
	failed := c.createRun(control.NewRun{Definition: "e2e_notified", BatchSize: ptr(size), MaxInFlight: ptr(4), MaxAttempts: ptr(1)})
	fend := c.waitDone(failed.ID, 2*time.Minute)
	if fend.State != store.RunFailed {
		t.Fatalf("run with a poisoned row %s, want failed", fend.State)
	}
	c.waitFor("the failure's notifications recorded", time.Minute, func() bool { return len(c.hookKeys(failed.ID)) >= 5 })
	time.Sleep(time.Second)
	deliveries, hooks = rc.of(failed.ID)
	if diff := cmp.Diff([]string{"/def failed", "/global failed", "/global started"}, deliveries); diff != "" {
		t.Errorf("deliveries of the failed run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"error", "start"}, hooks); diff != "" {
		t.Errorf("hook calls of the failed run (-want +got):\n%s", diff)
	}
	fp := rc.payload(fmt.Sprintf("/def failed %d", failed.ID))
	if fp.BatchesFailed != 1 || fp.Batches != items/size || !strings.Contains(fp.FirstBatchError, "poison row 1234") || !strings.Contains(fp.Error, "1 of 30 batches failed") {
		t.Errorf("failed payload: %+v", fp)
	}
	rc.mu.Lock()
	for id, n := range rc.ids {
		if n != 1 {
			t.Errorf("delivery %s arrived %d times", id, n)
		}
	}
	rc.mu.Unlock()
}

// A scheduler process refuses a webhook URL that is not http(s) at start,
// saying which variable and entry, and never prints the secret.
func TestProcessRefusesBadWebhookURL(t *testing.T) {
	c := newCluster(t)
	c.env = append(c.env, "DRIPFLOW_WEBHOOK_URLS=https://ok.example/x,ftp://files.example/PATHSECRET", "DRIPFLOW_WEBHOOK_SECRET=do-not-print-me")
	p := c.scheduler()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduler kept running with an ftp:// webhook URL")
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit code 0, want a failure")
	}
	log := c.logOf(p)
	if !strings.Contains(log, `DRIPFLOW_WEBHOOK_URLS: entry 2 (ftp://files.example/…): must be an http:// or https:// URL, got scheme "ftp"`) {
		t.Errorf("log does not say what is wrong:\n%s", log)
	}
	if strings.Contains(log, "PATHSECRET") || strings.Contains(log, "do-not-print-me") {
		t.Errorf("log shows a secret:\n%s", log)
	}
}
