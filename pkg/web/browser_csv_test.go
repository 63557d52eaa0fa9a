package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserCSVUpload: on the start form of a CSV backfill the operator
// picks a file, previews its row count and starts the run, which touches
// exactly the items the file names; a ragged file comes back on the form
// with its reason.
func TestBrowserCSVUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 30, registerCSVTouch(t))
	e.start()
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("id\n")
	for id := 25; id >= 1; id-- {
		fmt.Fprintf(&csv, "%d\n", id)
	}
	good := filepath.Join(dir, "items.csv")
	ragged := filepath.Join(dir, "ragged.csv")
	os.WriteFile(good, []byte(csv.String()), 0o644)
	os.WriteFile(ragged, []byte("id,note\n1,a\n2\n"), 0o644)

	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/definitions/ui_csv_touch"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("#run-form")),
	)
	b.do("a ragged file", chromedp.Navigate(b.base+"/definitions/ui_csv_touch"), chromedp.WaitVisible(css("#p-items")),
		chromedp.SetUploadFiles(css("#p-items"), []string{ragged}),
		chromedp.Click(css("#run-form button.primary"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#form-error")),
	)
	b.waitText("ragged file refused", "#form-error", 5*time.Second, func(s string) bool {
		return strings.Contains(s, "line 3 has 1 fields, the header has 2")
	})

	b.do("pick the file and preview",
		chromedp.SetUploadFiles(css("#p-items"), []string{good}),
		chromedp.Click(css("button[data-preview]"), chromedp.NodeVisible),
	)
	b.waitText("preview", "#preview .preview-result", 10*time.Second, is("25 records in 3 batches of 10."))
	b.snap("csv-upload")
	b.do("start the run",
		chromedp.Click(css("#run-form button.primary"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("#run")),
	)
	runID, _ := strconv.ParseInt(get(b, "run id", chromedp.AttributeValue(css("#run"), "data-run-id")).Value, 10, 64)
	deadline := time.Now().Add(30 * time.Second)
	for e.run(runID).State != "succeeded" {
		if time.Now().After(deadline) {
			b.fail("run %d is %s after 30s", runID, e.run(runID).State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var items []uiItem
	if err := e.db.Order("id").Find(&items).Error; err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		want := 0
		if it.ID <= 25 {
			want = 1
		}
		if it.Touched != want {
			t.Errorf("item %d touched %d times, want %d", it.ID, it.Touched, want)
		}
	}
	if r := e.run(runID); r.Total != 25 || r.RowsWritten != 25 || r.BatchesSucceeded != 3 {
		t.Errorf("run: total %d, %+v", r.Total, r.Counters)
	}
}
