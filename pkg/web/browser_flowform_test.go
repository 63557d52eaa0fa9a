package web_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/web"
)

// TestBrowserFlowForm creates a flow from the flow form in headless
// chromium, under a base path: pick an sql source and a file sink, see the
// message of a missing required setting next to it, fix it, preview the
// first records before and after a transform, save (version 1), then edit
// it into version 2.
func TestBrowserFlowForm(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 30, func(o *web.Options) { o.BasePath = "/ops" })
	b := newBrowser(t, e.srv.URL+"/ops")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// change sets a select's value as a person choosing it would: the
	// page hears a change event.
	change := func(sel, value string) chromedp.Action[chromedp.Void] {
		dispatch := chromedp.Evaluate[bool](`document.querySelector('` + sel + `').dispatchEvent(new Event("change", {bubbles: true}))`)
		return chromedp.Steps(
			chromedp.SetValue(css(sel), value, chromedp.NodeVisible),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error { _, err := dispatch(ctx, tg); return err }),
		)
	}
	dir := filepath.Join(t.TempDir(), "out")

	b.do("log in",
		chromedp.Navigate(b.base+"/flows"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("#new-flow")),
	)
	b.do("open the form",
		chromedp.Click(css("#new-flow"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#flow-form")),
		chromedp.SendKeys(css("#f-name"), "items_to_files"),
		chromedp.SendKeys(css("#f-description"), "Items to JSONL files."),
		change("#source-kind", "sql"),
		// The sql source's settings show at once, without a round trip.
		chromedp.WaitVisible(css("#source-sql-columns")),
		chromedp.SendKeys(css("#source-sql-columns"), "id, note, touched"),
		chromedp.Click(css("#add-transform"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#t-0-type")),
		change("#t-0-type", "select"),
	)
	if ph := get(b, "hint", chromedp.AttributeValue(css("#t-0-settings"), "placeholder")); !strings.Contains(ph.Value, `"fields"`) {
		b.fail("the select transform's example settings are not shown: %q", ph.Value)
	}
	if v := get(b, "columns kept", chromedp.Value(css("#source-sql-columns"))); v != "id, note, touched" {
		b.fail("adding a transform lost the typed columns: %q", v)
	}
	b.do("fill the rest",
		chromedp.SendKeys(css("#t-0-settings"), `{"fields": ["id", "note"]}`),
		change("#sink-kind", "file"),
		chromedp.WaitVisible(css("#sink-file-dir")),
		chromedp.SendKeys(css("#sink-file-dir"), dir),
		chromedp.SendKeys(css("#sink-file-format"), "jsonl"),
		chromedp.Click(css("#check-flow"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#form-problem")),
	)
	b.waitText("missing table", `[data-error-for="source.table"]`, 5*time.Second, is("is required (or model)"))
	b.snap("flow-form-invalid")

	b.do("fix and preview",
		chromedp.SendKeys(css("#source-sql-table"), "ui_items", chromedp.NodeVisible),
		chromedp.Click(css("#preview-flow"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#preview-after")),
	)
	if n := get(b, "rows read", chromedp.Evaluate[int](`document.querySelectorAll("#preview-before tbody tr").length`)); n != 10 {
		b.fail("the preview read %d records, want 10", n)
	}
	if cols := get(b, "columns after", chromedp.Evaluate[string](`[...document.querySelectorAll("#preview-after th")].map(th => th.textContent).join(",")`)); cols != "id,note" {
		b.fail("after the select transform the preview shows columns %q", cols)
	}
	if cols := get(b, "columns before", chromedp.Evaluate[string](`[...document.querySelectorAll("#preview-before th")].map(th => th.textContent).join(",")`)); cols != "id,note,touched" {
		b.fail("the preview read columns %q", cols)
	}
	b.snap("flow-form-preview")

	b.do("save", chromedp.Click(css("#save-flow"), chromedp.NodeVisible), chromedp.WaitVisible(css("#spec")))
	b.waitText("saved flash", ".flash-ok", 5*time.Second, func(s string) bool { return strings.Contains(s, "saved as version 1") })
	b.waitText("version 1", "#spec-version", time.Second, is("version 1"))
	if loc := get(b, "location", chromedp.Location()); loc != b.base+"/flows/items_to_files" {
		b.fail("after saving at %s", loc)
	}
	b.snap("flow-page-v1")

	b.do("edit",
		chromedp.Click(css("#edit-flow"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#flow-form")),
	)
	b.waitText("editing", "#editing-version", time.Second, is("editing version 1"))
	if v := get(b, "table loaded", chromedp.Value(css("#source-sql-table"))); v != "ui_items" {
		b.fail("the edit form shows table %q", v)
	}
	b.do("change the batch size and save",
		chromedp.Click(css("details.options summary"), chromedp.NodeVisible),
		chromedp.SendKeys(css("#options-batch-size"), "25", chromedp.NodeVisible),
		chromedp.Click(css("#save-flow"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#spec")),
	)
	b.waitText("version 2", "#spec-version", 5*time.Second, is("version 2"))
	if n := get(b, "history", chromedp.Evaluate[int](`document.querySelectorAll("#spec-history tr[data-version]").length`)); n != 2 {
		b.fail("the history lists %d versions, want 2", n)
	}
	b.snap("flow-page-v2")

	// The form with errors comes back as 422, which chromium logs as a
	// failed load; anything else is a script error or a CSP violation.
	b.mu.Lock()
	var errs []string
	for _, msg := range b.errs {
		if !strings.Contains(msg, "status of 422") {
			errs = append(errs, msg)
		}
	}
	b.mu.Unlock()
	if len(errs) > 0 {
		b.fail("console errors on dripflow pages:\n%s", strings.Join(errs, "\n"))
	}
}
