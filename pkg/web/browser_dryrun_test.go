package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

// TestBrowserDryRun clicks "Dry run" under a backfill's start form: a
// table of the first batches shows what they would change, the form keeps
// what was typed, and neither the items nor the runs change. The run
// options show the server's DRIPFLOW_DEFAULT_* defaults.
func TestBrowserDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 30, func(o *web.Options) {
		o.RunDefaults = control.Defaults{Sleep: 100 * time.Millisecond}
	})
	items := func() string {
		var rows []uiItem
		if err := e.db.Order("id").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(rows)
	}
	before := items()
	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/definitions/ui_touch"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("#run-form")),
	)
	b.do("dry run",
		chromedp.SendKeys(css("#p-note"), "dry"),
		chromedp.Click(css("details.options summary"), chromedp.NodeVisible),
		chromedp.SendKeys(css(`input[name="dry_run_batches"]`), "2", chromedp.NodeVisible),
		chromedp.Click(css("button[data-dry-run]"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#dry-run table")),
	)
	b.snap("dry-run")
	head := b.waitText("dry-run heading", "#dry-run h3", 5*time.Second, func(s string) bool { return s != "" })
	if !strings.Contains(head, "nothing was changed") {
		b.fail("dry run heading %q", head)
	}
	rows := get(b, "dry-run rows", chromedp.Evaluate[int](`document.querySelectorAll("#dry-run tr[data-dry-batch]").length`))
	if rows != 2 {
		b.fail("%d batches shown, want the 2 asked for", rows)
	}
	b.waitText("would change", `#dry-run tr[data-dry-batch="1"] [data-field="would-change"]`, 5*time.Second, is("10"))
	sample := b.waitText("sample", `#dry-run tr[data-dry-batch="1"] .dry-row`, 5*time.Second, func(s string) bool { return s != "" })
	if !strings.Contains(sample, "note") || !strings.Contains(sample, "→ dry") || !strings.Contains(sample, "touched 0 → 1") {
		b.fail("first sampled row %q; want note → dry and touched 0 → 1", sample)
	}
	if note := get(b, "note", chromedp.Value(css("#p-note"))); note != "dry" {
		b.fail("the dry run lost the typed note: %q", note)
	}
	b.do("open the run options", chromedp.Click(css("details.options summary"), chromedp.NodeVisible))
	hint := b.waitText("defaults hint", "#env-defaults", 5*time.Second, func(s string) bool { return s != "" })
	if !strings.Contains(hint, "default from DRIPFLOW_DEFAULT_SLEEP_MS: 100 ms") {
		b.fail("hint %q; want the sleep default from the environment", hint)
	}
	if items() != before {
		t.Error("the dry run changed the items")
	}
	page, err := e.st.ListRuns(context.Background(), store.RunFilter{})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("the dry run created %d run(s) (%v)", len(page.Items), err)
	}
}
