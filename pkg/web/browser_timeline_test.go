package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/store"
)

// TestBrowserTimeline watches a run's Timeline card update live, without
// a reload, while bob pauses and resumes the run from the CLI and a batch
// fails; after alice retries the batch from the page and the run
// succeeds, the page still says batches failed before.
func TestBrowserTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 100, nil)
	if err := e.db.Model(&uiItem{}).Where("id > 90").Update("broken", true).Error; err != nil {
		t.Fatal(err)
	}
	e.start()
	ctx := context.Background()
	alice := client.New(e.srv.URL, uiAliceToken)
	bob := client.New(e.srv.URL, uiBobToken).WithUserAgent("dripflow-cli/test")
	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("form.filters")),
	)
	// One batch at a time, 1.5 s each: slow enough to pause.
	created, err := alice.CreateRun(ctx, api.CreateRun{Definition: "ui_touch", MaxInFlight: ptr(1),
		Params: json.RawMessage(`{"note":"timeline","include_broken":true,"sleep_ms":1500}`)})
	if err != nil {
		t.Fatal(err)
	}
	runID, _ := strconv.ParseInt(created.ID, 10, 64)
	b.do("run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", b.base, runID)), chromedp.WaitVisible(css("#timeline")))
	b.waitText("created event", "#timeline", 5*time.Second, func(s string) bool {
		return strings.Contains(s, "created by alice (API)")
	})
	get(b, "mark the page", chromedp.Evaluate[int]("window.dripflowMarker = 1"))
	deadline := time.Now().Add(20 * time.Second)
	for e.run(runID).State != store.RunRunning {
		if time.Now().After(deadline) {
			t.Fatalf("run %d did not start: %s", runID, e.run(runID).State)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Bob pauses and resumes from the CLI; the card shows it by name.
	if _, err := bob.Pause(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	b.waitText("paused event", "#timeline li:first-child", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "paused") && strings.Contains(s, "user:bob") && strings.Contains(s, "paused by bob (CLI)")
	})
	if _, err := bob.Resume(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	b.waitText("resumed event", "#timeline li:first-child", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "resumed by bob (CLI)")
	})
	// The last batch fails; the card shows the worker's failure and the
	// scheduler's finish, newest first.
	b.waitText("batch failure", "#timeline", 40*time.Second, func(s string) bool {
		return strings.Contains(s, "batch_failed") && strings.Contains(s, "batch 10 (90, 100] attempt 1 of 1 failed for good") &&
			strings.Contains(s, "item 91 is broken")
	})
	b.waitText("finished event", `#timeline li[data-kind="finished"]`, 20*time.Second, func(s string) bool {
		return strings.Contains(s, "failed: 9 batches succeeded, 1 failed") && strings.Contains(s, "scheduler")
	})
	kinds := get(b, "kinds", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#timeline li")).map(li => li.dataset.kind)`))
	want := []string{"finished", "batch_failed", "resumed", "paused", "started", "created"}
	if got := strings.Join(kinds, " "); got != strings.Join(want, " ") {
		b.fail("timeline kinds newest first: %q, want %q", got, strings.Join(want, " "))
	}
	if m := get(b, "marker", chromedp.Evaluate[int]("window.dripflowMarker || 0")); m != 1 {
		b.fail("the run page was reloaded rather than updated in place")
	}
	b.snap("run-timeline")

	// Alice retries the failed batch once the data is fixed; the run
	// succeeds, and the page still says a batch failed before.
	if err := e.db.Model(&uiItem{}).Where("broken").Update("broken", false).Error; err != nil {
		t.Fatal(err)
	}
	b.do("retry the batch", chromedp.Click(css(`tr[data-batch-row="10"] form button`), chromedp.NodeVisible))
	b.waitText("retry flash", ".flash-ok", 10*time.Second, func(s string) bool { return strings.Contains(s, "Retrying batch 10") })
	b.waitText("retried run succeeds", `[data-field="status"]`, 30*time.Second, is("succeeded"))
	b.waitText("failed before", "#failed-before", 15*time.Second, func(s string) bool {
		return strings.Contains(s, "Failed before, retried: 1 batch failed for good and was retried")
	})
	b.waitText("timeline after retry", "#timeline", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "batch 10 retried by alice (UI)") && strings.Contains(s, "succeeded: 10 batches succeeded") &&
			strings.Contains(s, "item 91 is broken")
	})
	b.snap("run-timeline-retried")
	b.mu.Lock()
	errs := b.errs
	b.mu.Unlock()
	if len(errs) > 0 {
		b.fail("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
