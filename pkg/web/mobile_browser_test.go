package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
	"github.com/dripflow/dripflow/pkg/worker"
)

// At 420 px wide (a phone) every page fits the screen: the top bar wraps
// with every link and the user visible, and the wide tables and the chart
// scroll sideways inside their card instead of widening the page.
func TestBrowserNarrowScreen(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	// A presence key of the test's own: /workers lists exactly the worker
	// registered below, whatever other tests do.
	presenceKey := fmt.Sprintf("dripflow-test:narrow:%d:workers", time.Now().UnixNano())
	e := newUIEnv(t, 20, func(o *web.Options) { o.PresenceKey = presenceKey })
	r := e.createRun("alice", `{"note":"narrow"}`, nil)
	e.runWithBatches(r, "boom: a long error message that would widen the page if it did not wrap within its card", "the stack")
	// A worker as a deployed one names itself (host, pid, instance), holding
	// batches: its row is what widened /workers before its table scrolled.
	presence := worker.NewPresence(e.rdb, presenceKey)
	const workerID = "worker-7d9f8c6b5-x2x4q:4242:0c1e5a7e-33b1-4c55-9d2e-7a4f1b2c3d4e"
	t.Cleanup(func() { presence.Forget(context.Background(), workerID) })
	if err := presence.Beat(context.Background(), worker.WorkerInfo{ID: workerID, Queue: e.opts.Queue, Concurrency: 16,
		StartedAt: time.Now().Add(-time.Hour), LastHeartbeat: time.Now(),
		Batches: []worker.BatchRef{{RunID: r.ID, Seq: 1}, {RunID: r.ID, Seq: 2}, {RunID: r.ID, Seq: 3}}}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in at 420 px",
		chromedp.EmulateViewport(420, 900),
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("form.filters")),
	)
	for _, path := range []string{"/runs", fmt.Sprintf("/runs/%d", r.ID), "/definitions", "/definitions/ui_touch", "/flows", "/workers"} {
		b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(css("main")))
		if path == "/workers" {
			b.waitText("the registered worker", "main", time.Second, func(s string) bool { return strings.Contains(s, workerID) })
		}
		width := get(b, "page width", chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
		if width > 420 {
			b.fail("%s is %d px wide at a 420 px screen", path, width)
		}
		// Every top bar item is on screen.
		off := get(b, "top bar", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll(".topbar a, .topbar .identity, .topbar button"))
			.filter(el => { const r = el.getBoundingClientRect(); return r.right > window.innerWidth + 0.5 || r.left < 0 || r.width === 0; })
			.map(el => el.textContent.trim())`))
		if len(off) > 0 {
			b.fail("%s: top bar items off screen at 420 px: %v", path, off)
		}
		b.snap("narrow" + strings.ReplaceAll(path, "/", "-"))
	}
	// The run page's batch table has more columns than fit: it scrolls
	// inside its card, every column reachable.
	b.do("run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", b.base, r.ID)), chromedp.WaitVisible(css("#batches")))
	scrolls := get(b, "batch table scrolls", chromedp.Evaluate[bool](`(() => {
		const w = document.querySelector("#batches .table-wrap");
		if (!w || w.scrollWidth <= w.clientWidth) return false;
		w.scrollLeft = w.scrollWidth;
		const last = w.querySelector("thead th:last-child").getBoundingClientRect();
		return last.right <= window.innerWidth + 0.5;
	})()`))
	if !scrolls {
		b.fail("the batch table does not scroll to its last column at 420 px")
	}
	chart := get(b, "chart width", chromedp.Evaluate[int](`document.querySelector("img.chart").getBoundingClientRect().width`))
	if chart < 560 {
		b.fail("the chart is squeezed to %d px, its labels unreadable", chart)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if got, err := e.st.GetRun(ctx, r.ID); err != nil || got.State != store.RunRunning {
		t.Fatalf("run %d: %v %v", r.ID, got.State, err)
	}
}
