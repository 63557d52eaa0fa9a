package web_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/store"
)

// POST /api/v1/runs takes the adaptive batch size's target and bounds: out
// of range is a 422 naming the field and creates nothing; in range, the
// run shows the target and the bounds it adapts within (defaults filled
// in), and its batches the size each was planned with.
func TestAPIAdaptiveBatchSize(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"definition":"fix_user_emails","target_batch_ms":5}`, "target_batch_ms"},
		{`{"definition":"fix_user_emails","target_batch_ms":600001}`, "target_batch_ms"},
		{`{"definition":"fix_user_emails","target_batch_ms":-200}`, "target_batch_ms"},
		{`{"definition":"fix_user_emails","target_batch_ms":"fast"}`, "target_batch_ms"},
		{`{"definition":"fix_user_emails","target_batch_ms":200,"batch_size":1000,"min_batch_size":2000}`, "min_batch_size"},
		{`{"definition":"fix_user_emails","target_batch_ms":200,"batch_size":1000,"max_batch_size":999}`, "max_batch_size"},
		{`{"definition":"fix_user_emails","target_batch_ms":200,"max_batch_size":1000001}`, "max_batch_size"},
		{`{"definition":"fix_user_emails","target_batch_ms":200,"min_batch_size":-1}`, "min_batch_size"},
		{`{"definition":"fix_user_emails","min_batch_size":50,"max_batch_size":40}`, "min_batch_size"},
	} {
		code, ed, _ := e.raw("POST", "/api/v1/runs", aliceToken, tc.body)
		if code != 422 || ed.Code != "invalid" || ed.Field != tc.field {
			t.Errorf("%s: %d %+v, want 422 naming %s", tc.body, code, ed, tc.field)
		}
	}
	if page, err := e.alice.ListRuns(ctx, client.ListRunsOptions{}); err != nil || len(page.Items) != 0 {
		t.Fatalf("refused requests created runs: %d, %v", len(page.Items), err)
	}

	target, size := int64(200), 1000
	r, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails", BatchSize: &size, TargetBatchMS: &target})
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Options; o.TargetBatchMS != 200 || o.BatchSize != 1000 || o.MinBatchSize != 10 || o.MaxBatchSize != 100_000 {
		t.Fatalf("created run's options %+v; want target 200 ms, bounds 10 and 100,000 (batch size /100 and ×100)", o)
	}
	got, err := e.alice.Run(ctx, r.ID)
	if err != nil || got.BatchSizeNow != 1000 {
		t.Fatalf("GET run: batch_size_now %d, %v; want 1000 before any batch", got.BatchSizeNow, err)
	}
	minSize, maxSize := 50, 5000
	r2, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails", BatchSize: &size, TargetBatchMS: &target, MinBatchSize: &minSize, MaxBatchSize: &maxSize})
	if err != nil || r2.Options.MinBatchSize != 50 || r2.Options.MaxBatchSize != 5000 {
		t.Fatalf("run with bounds: %+v, %v", r2.Options, err)
	}
	plain, err := e.alice.CreateRun(ctx, api.CreateRun{Definition: "fix_user_emails"})
	if err != nil || plain.Options.TargetBatchMS != 0 || plain.Options.MinBatchSize != 0 {
		t.Fatalf("run without a target: %+v, %v", plain.Options, err)
	}

	// The batches say the size they were planned with; the run, the last.
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	if _, err := e.st.TransitionRun(ctx, id, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AppendBatches(ctx, id, store.PlanStep{To: "[2300]", Batches: []store.KeyRange{
		{Lo: "", Hi: "[1000]", Size: 1000}, {Lo: "[1000]", Hi: "[2300]", Size: 1300}}}); err != nil {
		t.Fatal(err)
	}
	page, err := e.alice.Batches(ctx, r.ID, nil, 0, "")
	if err != nil || len(page.Items) != 2 || page.Items[0].Size != 1000 || page.Items[1].Size != 1300 {
		t.Fatalf("batches: %+v, %v; want sizes 1000 and 1300", page.Items, err)
	}
	if got, err = e.alice.Run(ctx, r.ID); err != nil || got.BatchSizeNow != 1300 {
		t.Fatalf("GET run: batch_size_now %d, %v; want 1300, the last batch's", got.BatchSizeNow, err)
	}
}

// The start form takes the target and bounds, refuses bad ones naming the
// field with the options open, and the run page says the run adapts and
// shows each batch's size.
func TestUIAdaptiveBatchSize(t *testing.T) {
	e := newUIEnv(t, 20, nil)
	c := e.client()
	c.login(uiAliceToken)
	page := c.get("/definitions/ui_touch")
	for _, want := range []string{`name="target_batch_ms"`, `name="min_batch_size"`, `name="max_batch_size"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("start form lacks %s", want)
		}
	}
	for _, tc := range []struct{ field, value string }{
		{"target_batch_ms", "3"}, {"target_batch_ms", "soon"}, {"max_batch_size", "5"},
	} {
		r := c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{"p.note": {"n"}, "target_batch_ms": {"250"}, tc.field: {tc.value}})
		if r.code != 422 || !markedInvalid(r.body, tc.field) || !strings.Contains(r.body, `<details class="options" open>`) ||
			!strings.Contains(r.body, `value="`+tc.value+`"`) {
			t.Errorf("%s=%s: %d, want 422 naming it with the options open\n%s", tc.field, tc.value, r.code, r.body)
		}
	}
	if runs, err := e.st.ListRuns(context.Background(), store.RunFilter{}); err != nil || len(runs.Items) != 0 {
		t.Fatalf("refused forms created runs: %d, %v", len(runs.Items), err)
	}
	r := c.post("/definitions/ui_touch", "/definitions/ui_touch/runs", url.Values{"p.note": {"n"}, "batch_size": {"10"}, "target_batch_ms": {"250"}, "max_batch_size": {"40"}})
	if r.code != 303 {
		t.Fatalf("start an adaptive run: %d\n%s", r.code, r.body)
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.location(), "/runs/"), 10, 64)
	run := e.run(id)
	if o := run.Options; o.TargetBatchTime != 250*time.Millisecond || o.MinBatchSize != 1 || o.MaxBatchSize != 40 {
		t.Fatalf("run options %+v; want target 250ms, bounds 1 and 40", o)
	}
	ctx := context.Background()
	if run.State == store.RunScheduled {
		if _, err := e.st.TransitionRun(ctx, id, store.RunRunning, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.AppendBatches(ctx, id, store.PlanStep{To: "[17]", Batches: []store.KeyRange{{Hi: "[10]", Size: 10}, {Lo: "[10]", Hi: "[17]", Size: 4300}}}); err != nil {
		t.Fatal(err)
	}
	body := c.get(r.location()).body
	for _, want := range []string{`data-field="adaptive">adaptive: target 250 ms, now 4,300 per batch`, `between 1 and 40`,
		`title="Keys the batch was planned with">Size</th>`, `<td class="num" data-field="size">4,300</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
}

// markedInvalid reports whether the form's input named field is marked
// invalid.
func markedInvalid(page, field string) bool {
	i := strings.Index(page, `name="`+field+`"`)
	if i < 0 {
		return false
	}
	tag, _, _ := strings.Cut(page[i:], ">")
	return strings.Contains(tag, `class="invalid"`)
}
