package web_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/store"
)

// TestRunsListByKind: GET /api/v1/runs?kind= lists only backfills or only
// flows (another kind is a 422 naming the field), and the runs page's kind
// selector does the same, remembered for the next visit until "all".
func TestRunsListByKind(t *testing.T) {
	e := newUIEnv(t, 0, nil)
	ctx := context.Background()
	backfill := e.createRun("alice", `{"note":"n"}`, nil)
	flow := e.createRun("scheduler", `{}`, func(n *store.NewRun) { n.Definition, n.Kind = "ui_copy", store.KindFlow })

	alice := client.New(e.srv.URL, uiAliceToken)
	for kind, want := range map[string]int64{"backfill": backfill.ID, "flow": flow.ID} {
		p, err := alice.ListRuns(ctx, client.ListRunsOptions{Kind: kind})
		if err != nil {
			t.Fatalf("kind %s: %v", kind, err)
		}
		if len(p.Items) != 1 || p.Items[0].Kind != kind || p.Items[0].ID != strconv.FormatInt(want, 10) {
			t.Errorf("kind %s: %+v, want run %d alone", kind, p.Items, want)
		}
	}
	if p, err := alice.ListRuns(ctx, client.ListRunsOptions{}); err != nil || len(p.Items) != 2 {
		t.Errorf("without kind: %d runs, %v; want both", len(p.Items), err)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/runs?kind=job", nil)
	req.Header.Set("Authorization", "Bearer "+uiAliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("kind=job: %d, want 422", resp.StatusCode)
	}
	_, err = alice.ListRuns(ctx, client.ListRunsOptions{Kind: "job"})
	if err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("client, kind job: %v, want an error naming kind", err)
	}

	c := e.client()
	c.login(uiAliceToken)
	listed := func(body string) (b, f bool) {
		return strings.Contains(body, `href="/runs/`+strconv.FormatInt(backfill.ID, 10)+`"`), strings.Contains(body, `href="/runs/`+strconv.FormatInt(flow.ID, 10)+`"`)
	}
	page := c.get("/runs")
	if b, f := listed(page.body); !b || !f {
		t.Fatalf("/runs lists backfill %v, flow %v; want both", b, f)
	}
	if !strings.Contains(page.body, `<span class="badge kind-flow"`) {
		t.Error("the flow run is not marked as one")
	}
	page = c.get("/runs?kind=backfill")
	if b, f := listed(page.body); !b || f {
		t.Errorf("/runs?kind=backfill lists backfill %v, flow %v", b, f)
	}
	if !strings.Contains(page.body, `<option value="backfill" selected>`) || !strings.Contains(page.body, "Showing backfill runs only") {
		t.Error("the page does not say it lists backfills only")
	}
	// Remembered: the next visit without a kind lists backfills only.
	page = c.get("/runs")
	if b, f := listed(page.body); !b || f {
		t.Errorf("/runs after choosing backfills lists backfill %v, flow %v", b, f)
	}
	page = c.get("/runs?kind=flow")
	if b, f := listed(page.body); b || !f {
		t.Errorf("/runs?kind=flow lists backfill %v, flow %v", b, f)
	}
	c.get("/runs?kind=all")
	page = c.get("/runs")
	if b, f := listed(page.body); !b || !f {
		t.Errorf("/runs after choosing all lists backfill %v, flow %v", b, f)
	}
	if r := c.get("/runs?kind=job"); r.code != http.StatusUnprocessableEntity && r.code != http.StatusBadRequest {
		t.Errorf("/runs?kind=job: %d, want a 4xx page", r.code)
	}
}
