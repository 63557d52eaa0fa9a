package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/web"
)

// The Dry run button without JavaScript: the page comes back with the
// report, or with why it was refused, and the form as typed.
func TestUIDryRun(t *testing.T) {
	e := newUIEnv(t, 30, func(o *web.Options) {
		toHTTP, err := flows.New(flows.Flow{
			Name:    "ui_to_http",
			Source:  &sqlconn.Source{Table: "ui_items", Columns: []string{"id", "note"}},
			Sink:    &httpconn.Sink{URL: "http://127.0.0.1:9/items"},
			Runtime: flows.Once{},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Registry.Register(toHTTP); err != nil {
			t.Fatal(err)
		}
	})
	c := e.client()
	c.login(uiAliceToken)
	page := "/definitions/ui_touch"
	r := c.post(page, page+"/dry-run", url.Values{"p.note": {"typed"}, "when": {"now"}, "tz": {"UTC"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "nothing was changed, no run was created") ||
		!strings.Contains(r.body, `data-dry-batch="3"`) || strings.Contains(r.body, `data-dry-batch="4"`) || !strings.Contains(r.body, `value="typed"`) {
		t.Fatalf("dry run: %d, want 3 batches shown and the note kept\n%s", r.code, r.body)
	}
	r = c.post(page, page+"/dry-run", url.Values{"p.note": {"typed"}, "dry_run_batches": {"x"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "dry_run_batches: must be a whole number") {
		t.Errorf("dry_run_batches x: %d\n%s", r.code, r.body)
	}
	r = c.post(page, page+"/dry-run", url.Values{"p.note": {"typed"}, "dry_run_batches": {"21"}})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "between 1 and 20") {
		t.Errorf("dry_run_batches 21: %d\n%s", r.code, r.body)
	}
	r = c.post("/definitions/ui_to_http", "/definitions/ui_to_http/dry-run", url.Values{})
	if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Dry run refused: flow &#34;ui_to_http&#34; writes to a http sink") {
		t.Errorf("dry run of a flow into HTTP: %d\n%s", r.code, r.body)
	}
	if page, err := e.st.ListRuns(context.Background(), store.RunFilter{}); err != nil || len(page.Items) != 0 {
		t.Errorf("dry runs created %d run(s) (%v)", len(page.Items), err)
	}
}
