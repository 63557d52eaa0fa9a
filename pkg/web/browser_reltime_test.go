package web_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserRelativeTimes: the runs list says when a run was created and
// finished relatively ("just now", "3 min ago"), the ISO time in the
// reader's zone in the title, and keeps it current as time passes.
func TestBrowserRelativeTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 0, nil)
	r := e.createRun("alice", `{"note":"rel"}`, nil)
	if _, err := e.st.CancelRun(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("#runs-list")),
	)
	times := fmt.Sprintf(`Array.from(document.querySelector('#runs-list a[href="/runs/%d"]').closest("tr").querySelectorAll("time[data-relative]")).map(t => [t.textContent, t.title])`, r.ID)
	cells := get(b, "times", chromedp.Evaluate[[][]string](times))
	if len(cells) != 2 {
		b.fail("the run's row has %d relative times, want created and finished", len(cells))
	}
	recent := regexp.MustCompile(`^(just now|\d+ s ago)$`)
	isoLocal := regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2}$`)
	for i, c := range cells {
		if !recent.MatchString(c[0]) || !isoLocal.MatchString(c[1]) {
			b.fail("time %d reads %q with title %q, want a recent relative time and the ISO time", i, c[0], c[1])
		}
	}
	// Three minutes later (the page's clock moved on), the list, which
	// refreshes itself, says so.
	get(b, "move the clock", chromedp.Evaluate[bool](`(() => { const real = Date.now; Date.now = () => real.call(Date) + 190000; return true; })()`))
	deadline := time.Now().Add(20 * time.Second)
	for {
		cells = get(b, "times", chromedp.Evaluate[[][]string](times))
		if len(cells) == 2 && cells[1][0] == "3 min ago" && cells[0][0] == "3 min ago" {
			break
		}
		if time.Now().After(deadline) {
			b.fail("after three minutes the times read %v, want 3 min ago", cells)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
