package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dripflow/dripflow/pkg/store"
)

// TestBrowserHeldBanner: a run the scheduler holds for a failing database
// health check shows a banner saying why on its page and a held badge in
// the runs list; the banner goes away by itself once the hold ends.
func TestBrowserHeldBanner(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium(t)
	e := newUIEnv(t, 10, nil)
	ctx := context.Background()
	r, err := e.st.CreateRun(ctx, store.NewRun{Definition: "ui_touch", Kind: store.KindBackfill, CreatedBy: "alice",
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1,
			HealthChecks: []store.HealthCheck{{Kind: store.HealthReplicationLag, MaxSeconds: 5}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	// What the scheduler writes when the check fails.
	if err := e.st.SetRunHold(ctx, r.ID, &store.RunHold{Reason: "replication lag 12.3 s > 5 s", Check: "replication_lag", Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.srv.URL)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	b.do("log in",
		chromedp.Navigate(b.base+"/runs"),
		chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), uiAliceToken),
		chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css("form.filters")),
	)
	b.waitText("held badge", "table.runs [data-held]", 5*time.Second, func(s string) bool { return s == "held" })
	b.do("run page", chromedp.Navigate(fmt.Sprintf("%s/runs/%d", b.base, r.ID)), chromedp.WaitVisible(css("#held")))
	b.waitText("held banner", "#held", 5*time.Second, func(s string) bool {
		return strings.HasPrefix(s, "Held: replication lag 12.3 s > 5 s since ") && strings.Contains(s, "No new batch starts")
	})
	b.waitText("options", "#run", 5*time.Second, func(s string) bool { return strings.Contains(s, "replication lag > 5 s") })
	// Released: the page follows without a reload.
	if err := e.st.SetRunHold(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := get(b, "banners", chromedp.Evaluate[int](`document.querySelectorAll("#held").length`))
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held banner is still on the page 15s after the hold ended")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
