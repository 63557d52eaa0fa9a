package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/scheduler"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
	"github.com/dripflow/dripflow/pkg/web"
	"github.com/dripflow/dripflow/pkg/worker"
)

// chromium returns Debian's chromium (or DRIPFLOW_TEST_CHROMIUM). Without
// it the browser tests skip, except in CI (CI=true), where they fail:
// scripts/test-services.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("DRIPFLOW_TEST_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		if testenv.InCI() {
			t.Fatalf("chromium is required in CI (CI=true) but %s is missing: run scripts/test-services.sh or set DRIPFLOW_TEST_CHROMIUM", p)
		}
		t.Skipf("chromium not found at %s (run scripts/test-services.sh or set DRIPFLOW_TEST_CHROMIUM)", p)
	}
	return p
}

// start runs a scheduler and a worker in process, as internal/e2e does,
// until the test ends.
func (e *uiEnv) start() {
	e.t.Helper()
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sch, err := scheduler.New(scheduler.Config{
		Store: e.st, Redis: e.rdb, DB: e.db, Registry: e.reg, Events: e.bus,
		Tasks: tasks.Config{Queue: e.opts.Queue}, LeaderKey: e.prefix + "leader",
		ReconcileInterval: time.Second, ReconcileGrace: time.Second, Logger: log.Named("scheduler"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := worker.New(worker.Config{
		Store: e.st, Redis: e.rdb, DB: e.db, Registry: e.reg, Events: e.bus, Queue: e.opts.Queue,
		Concurrency: 4, ShutdownTimeout: 5 * time.Second, Logger: log.Named("worker"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); sch.Run(ctx) }()
	go func() { defer wg.Done(); w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// browser is one headless chromium tab. Confirmation dialogs are accepted
// (and counted); console errors are recorded; a failing step saves a
// screenshot.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	mu      sync.Mutex
	dialogs []string
	errs    []string
	watch   bool // record console errors and exceptions (our pages only)
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first action starts the browser, which lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, base: base, watch: true}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			go chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				_, err := cdp.Call(ctx, tg, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
				return err
			}))
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				if b.watch {
					b.errs = append(b.errs, fmt.Sprintf("%s (%s %s:%d)", m, m.Source, m.URL, m.Line))
				}
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions as one step; on failure it saves a screenshot and stops
// the test.
func (b *browser) do(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", name, err)
	}
}

// get runs one action that returns a value.
func get[T any](b *browser, name string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail("%s: %v", name, err)
	}
	return v
}

// fail saves a screenshot of the page as a test artifact and fails.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	dir := os.Getenv("DRIPFLOW_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "dripflow-test-artifacts")
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s (page %s; no screenshot: %v)", msg, loc, err)
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%d.png", strings.ReplaceAll(b.t.Name(), "/", "_"), time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if err := os.WriteFile(name, png, 0o644); err == nil {
			b.t.Logf("screenshot of %s: %s", loc, name)
		}
	}
	b.t.Fatalf("%s (page %s)", msg, loc)
}

// waitText polls the text of the element sel until ok accepts it.
func (b *browser) waitText(what, sel string, timeout time.Duration, ok func(string) bool) string {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		last, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		cancel()
		if err == nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			b.fail("%s: %s shows %q after %s (%v)", what, sel, last, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// snap saves a screenshot to $DRIPFLOW_TEST_SCREENSHOTS when it is set, to
// look at the pages.
func (b *browser) snap(name string) {
	b.t.Helper()
	dir := os.Getenv("DRIPFLOW_TEST_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := get(b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) dialogCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.dialogs)
}

func is(want string) func(string) bool {
	return func(s string) bool { return strings.TrimSpace(s) == want }
}

// TestBrowser drives the UI in headless chromium against a real scheduler
// and worker (PostgreSQL and Redis), under a base path: log in, start a
// backfill from its form, watch it reach 100 % live, pause and resume it,
// retry a failed batch once its data is fixed, and open asynqmon.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	start := time.Now()
	e := newUIEnv(t, 200, func(o *web.Options) { o.BasePath = "/ops" })
	if err := e.db.Model(&uiItem{}).Where("id > 195").Update("broken", true).Error; err != nil {
		t.Fatal(err)
	}
	e.start()
	b := newBrowser(t, e.srv.URL+"/ops")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Log in: the login page comes first and sends us back.
	b.do("log in",
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("form.filters")),
	)
	if loc := get(b, "location", chromedp.Location()); loc != b.base+"/runs" {
		b.fail("after login at %s, want %s/runs", loc, b.base)
	}
	b.waitText("identity", ".who .identity", 5*time.Second, is("alice"))
	b.snap("runs-empty")

	// The runs list refreshes by itself: a run created elsewhere shows up
	// without a reload.
	get(b, "mark the page", chromedp.Evaluate[int]("window.dripflowMarker = 7"))
	later := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	listed := e.createRun("bob", `{"note":"listed"}`, func(n *store.NewRun) { n.StartAt = &later })
	b.waitText("run listed live", "#runs-list", 15*time.Second, func(s string) bool {
		return strings.Contains(s, "bob") && strings.Contains(s, strconv.FormatInt(listed.ID, 10))
	})
	if m := get(b, "marker", chromedp.Evaluate[int]("window.dripflowMarker || 0")); m != 7 {
		b.fail("the runs list was reloaded rather than refreshed in place")
	}
	if _, err := e.st.CancelRun(context.Background(), listed.ID); err != nil {
		t.Fatal(err)
	}

	// Start a run from the definition's form, with a count preview.
	b.do("fill the form",
		chromedp.Navigate(b.base+"/definitions"),
		chromedp.Click(css("#def-ui_touch a.button"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#run-form")),
		chromedp.SendKeys(css("#p-note"), "from the browser"),
		chromedp.SetValue(css("#p-mode"), "slow"),
		chromedp.Click(css("details.options summary"), chromedp.NodeVisible),
		chromedp.SendKeys(css(`input[name="batch_size"]`), "10", chromedp.NodeVisible),
		chromedp.Click(css("button[data-preview]"), chromedp.NodeVisible),
	)
	b.waitText("preview", "#preview .preview-result", 10*time.Second, is("195 records in 20 batches of 10."))
	b.snap("definition")
	if note := get(b, "note", chromedp.Value(css("#p-note"))); note != "from the browser" {
		b.fail("the preview changed the typed note to %q", note)
	}
	b.do("start the run",
		chromedp.Click(css("#run-form button.primary"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#run")),
	)
	b.waitText("flash", ".flash-ok", 5*time.Second, func(s string) bool { return strings.Contains(s, "of ui_touch created") })
	runID, _ := strconv.ParseInt(get(b, "run id", chromedp.AttributeValue(css("#run"), "data-run-id")).Value, 10, 64)
	b.waitText("started by", `[data-field="created-by"]`, time.Second, is("alice"))
	// The header's start time follows the run live (it was "—" while the
	// run was scheduled).
	b.waitText("started time", `[data-field="started"]`, 10*time.Second, func(s string) bool {
		return s != "" && s != "—" && strings.ContainsAny(s, "0123456789")
	})
	// Every time on the page reads one way: ISO 8601 in the reader's zone
	// with its offset.
	isoLocal := regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2}$`)
	for _, s := range get(b, "times", chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("time[data-local]")).map(t => t.textContent)`)) {
		if !isoLocal.MatchString(s) {
			b.fail("a time reads %q, want YYYY-MM-DD hh:mm:ss ±hh:mm", s)
		}
	}

	// Live updates: the page is not reloaded while progress moves.
	get(b, "mark the page", chromedp.Evaluate[int]("window.dripflowMarker = 1"))
	b.waitText("progress before pausing", `[data-field="processed"]`, 20*time.Second, func(s string) bool {
		n, _ := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		return n >= 20 && n < 150
	})
	if m := get(b, "marker", chromedp.Evaluate[int]("window.dripflowMarker || 0")); m != 1 {
		b.fail("the run page reloaded during live updates")
	}
	b.snap("run-live")

	// Pause and resume, each confirmed in a dialog.
	dialogs := b.dialogCount()
	b.do("pause", chromedp.Click(css(`form[data-when="running"] button`), chromedp.NodeVisible))
	b.waitText("paused flash", ".flash-ok", 10*time.Second, func(s string) bool { return strings.Contains(s, "paused") })
	b.waitText("paused state", `[data-field="status"]`, 5*time.Second, is("paused"))
	b.snap("run-paused")
	if got := e.run(runID).State; got != store.RunPaused {
		b.fail("run is %s after pausing", got)
	}
	if n := b.dialogCount() - dialogs; n != 1 {
		b.fail("pausing asked %d confirmations", n)
	}
	b.do("resume", chromedp.Click(css(`form[data-when="paused"] button`), chromedp.NodeVisible))
	b.waitText("resumed flash", ".flash-ok", 10*time.Second, func(s string) bool { return strings.Contains(s, "resumed") })
	get(b, "mark the page", chromedp.Evaluate[int]("window.dripflowMarker = 2"))
	b.waitText("100 %", `[data-field="percent"]`, 30*time.Second, is("100.0 %"))
	b.waitText("succeeded", `[data-field="status"]`, 10*time.Second, is("succeeded"))
	b.waitText("processed", `[data-field="processed"]`, time.Second, is("195"))
	if v := get(b, "progress bar", chromedp.Evaluate[float64]("document.getElementById('run-progress').value")); v != 100 {
		b.fail("progress bar at %v", v)
	}
	if m := get(b, "marker", chromedp.Evaluate[int]("window.dripflowMarker || 0")); m != 2 {
		b.fail("the run page reloaded during live updates")
	}
	if n := b.dialogCount() - dialogs; n != 2 {
		b.fail("pause and resume asked %d confirmations", n)
	}
	if !get(b, "pause hidden", chromedp.Evaluate[bool](`document.querySelector('form[data-when="running"]').hidden`)) {
		b.fail("pause is still offered on a succeeded run")
	}
	if r := e.run(runID); r.State != store.RunSucceeded || r.RowsRead != 195 {
		b.fail("run %d: %s with %d rows", runID, r.State, r.RowsRead)
	}

	// A run over broken items fails; once the data is fixed, retrying the
	// failed batch from the batch table finishes it.
	b.do("start a failing run",
		chromedp.Navigate(b.base+"/definitions/ui_touch"),
		chromedp.WaitVisible(css("#run-form")),
		chromedp.SendKeys(css("#p-note"), "second"),
		chromedp.Click(css(`input[name="p.include_broken"]`), chromedp.NodeVisible),
		chromedp.Click(css("#run-form button.primary"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#run")),
	)
	failedID, _ := strconv.ParseInt(get(b, "run id", chromedp.AttributeValue(css("#run"), "data-run-id")).Value, 10, 64)
	get(b, "mark the page", chromedp.Evaluate[int]("window.dripflowMarker = 3"))
	b.waitText("failed", `[data-field="status"]`, 30*time.Second, is("failed"))
	b.waitText("failed batches", `[data-batch="failed"]`, time.Second, is("1"))
	// Without a reload: the error box at the top names the failed batch
	// and says why, and the batch table has refreshed by itself.
	b.waitText("first failure", `#run-error [data-field="first-failure"]`, 10*time.Second, func(s string) bool {
		return strings.Contains(s, "The failed batch: #20") && strings.Contains(s, "after 1 attempt")
	})
	b.waitText("first failure's error", "#run-error pre.batch-error", time.Second, func(s string) bool {
		return strings.Contains(s, "is broken: <script>alert('batch')</script>")
	})
	b.do("batch table refreshed", chromedp.WaitVisible(css(`tr[data-batch-row="20"] + tr.error-row summary`)))
	if m := get(b, "marker", chromedp.Evaluate[int]("window.dripflowMarker || 0")); m != 3 {
		b.fail("the run page was reloaded rather than updated in place")
	}
	if err := e.db.Model(&uiItem{}).Where("broken").Update("broken", false).Error; err != nil {
		t.Fatal(err)
	}
	b.do("show failed batches",
		chromedp.SetValue(css(`select[name="batches"]`), "failed"),
		chromedp.Submit(css(`select[name="batches"]`)),
		chromedp.WaitVisible(css("tr.error-row summary")),
	)
	// The error is shown as text: its <script> was escaped, not run.
	b.waitText("batch error", "tr.error-row summary", time.Second, func(s string) bool {
		return strings.Contains(s, "is broken: <script>alert('batch')</script>")
	})
	b.do("open the error", chromedp.Click(css("tr.error-row summary"), chromedp.NodeVisible))
	b.snap("run-failed")
	if n := get(b, "failed rows", chromedp.Evaluate[int]("document.querySelectorAll('tr[data-batch-row]').length")); n != 1 {
		b.fail("the failed filter shows %d batches", n)
	}
	dialogs = b.dialogCount()
	b.do("retry the batch", chromedp.Click(css("tr[data-batch-row] form button"), chromedp.NodeVisible))
	b.waitText("retry flash", ".flash-ok", 10*time.Second, func(s string) bool { return strings.Contains(s, "Retrying batch 20") })
	if n := b.dialogCount() - dialogs; n != 1 {
		b.fail("retrying asked %d confirmations", n)
	}
	b.waitText("retried run succeeds", `[data-field="status"]`, 30*time.Second, is("succeeded"))
	b.snap("run-retried")
	if r := e.run(failedID); r.State != store.RunSucceeded || r.RowsRead != 200 || r.BatchesFailed != 0 {
		b.fail("run %d after retry: %s, %d rows, %d failed", failedID, r.State, r.RowsRead, r.BatchesFailed)
	}
	var n int64
	if err := e.db.Model(&uiItem{}).Where("note = ?", "second").Count(&n).Error; err != nil || n != 200 {
		b.fail("items with the second note: %d (%v)", n, err)
	}

	// Our pages ran without script errors or CSP violations.
	b.mu.Lock()
	errs := b.errs
	b.watch = false
	b.mu.Unlock()
	if len(errs) > 0 {
		b.fail("console errors on dripflow pages:\n%s", strings.Join(errs, "\n"))
	}

	// A batch links to its task in asynqmon, which renders under the base
	// path.
	b.do("run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", b.base, failedID)), chromedp.WaitVisible(css("#batches")))
	href := get(b, "task link", chromedp.AttributeValue(css(`tr[data-batch-row="20"] a.mono`), "href")).Value
	if want := fmt.Sprintf("/ops/monitoring/queues/%s/tasks/%d:20:1", e.opts.Queue, failedID); href != want {
		b.fail("task link %q, want %q", href, want)
	}
	b.do("asynqmon",
		chromedp.Click(css(`nav.nav a[href="/ops/monitoring/"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(text(), "Queues")]`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(text(), "`+e.opts.Queue+`")]`)),
	)
	b.snap("asynqmon")
	if os.Getenv("DRIPFLOW_TEST_SCREENSHOTS") != "" {
		b.do("runs", chromedp.Navigate(b.base+"/runs"), chromedp.WaitVisible(css(".stats")))
		b.snap("runs")
		b.do("flows", chromedp.Navigate(b.base+"/flows"), chromedp.WaitVisible(css(".flow")))
		b.snap("flows")
		b.do("definitions", chromedp.Navigate(b.base+"/definitions"), chromedp.WaitVisible(css(".def")))
		b.snap("definitions")
		b.do("task", chromedp.Navigate(e.srv.URL+href), chromedp.Sleep(2*time.Second))
		b.snap("asynqmon-task")
	}
	t.Logf("browser scenario took %s", time.Since(start).Round(time.Millisecond))
}
