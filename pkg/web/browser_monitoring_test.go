package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/web"
)

// TestBrowserMonitoringBackLink: asynqmon, embedded under /monitoring,
// shows a "← dripflow" link on top of its own page (on its start page and
// on a deep link it routes itself), and the link leads back to the runs
// list, under the base path.
func TestBrowserMonitoringBackLink(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 0, func(o *web.Options) { o.BasePath = "/ops" })
	b := newBrowser(t, e.srv.URL+"/ops")
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("form.filters")),
	)
	for _, path := range []string{"/monitoring/", "/monitoring/queues/" + e.opts.Queue + "?status=archived"} {
		b.do("asynqmon "+path,
			chromedp.Navigate(b.base+path),
			chromedp.WaitVisible(chromedp.Search(`//*[contains(text(), "Queues")]`)),
			chromedp.WaitVisible(css("#dripflow-back")),
		)
		b.waitText("back link", "#dripflow-back", 0, is("← dripflow"))
		// On top: the topmost element at the link's centre is the link.
		onTop := get(b, "link on top", chromedp.Evaluate[bool](`(() => {
			const a = document.getElementById("dripflow-back"), r = a.getBoundingClientRect();
			return r.width > 0 && document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === a;
		})()`))
		if !onTop {
			b.fail("%s: the back link is hidden under asynqmon's page", path)
		}
	}
	b.snap("asynqmon-back-link")
	b.do("follow it",
		chromedp.Click(css("#dripflow-back"), chromedp.NodeVisible),
		chromedp.WaitVisible(css("form.filters")),
	)
	if loc := get(b, "location", chromedp.Location()); loc != b.base+"/runs" {
		b.fail("the back link led to %s, want %s/runs", loc, b.base)
	}
}
