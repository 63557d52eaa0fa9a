package cli

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/store"
)

// runs start takes the adaptive batch size's flags; the server's 422 names
// the field and nothing is created; runs show says the run adapts, at what
// size now, and a failed batch's planned size.
func TestRunsStartAdaptive(t *testing.T) {
	url, st := server(t)
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--target-batch-ms", "5"}, "target_batch_ms"},
		{[]string{"--target-batch-ms", "200", "--batch-size", "100", "--max-batch-size", "50"}, "max_batch_size"},
		{[]string{"--target-batch-ms", "200", "--batch-size", "100", "--min-batch-size", "101"}, "min_batch_size"},
	} {
		code, _, errs := run(t, url, append([]string{"start", "fix_user_emails", "--output", "json"}, tc.args...)...)
		var ae api.Error
		if code != ExitError || json.Unmarshal([]byte(errs), &ae) != nil || ae.Error.Field != tc.field {
			t.Errorf("start %v: exit %d, %q; want the API's error naming %s", tc.args, code, errs, tc.field)
		}
	}
	if page, err := st.ListRuns(context.Background(), store.RunFilter{}); err != nil || len(page.Items) != 0 {
		t.Fatalf("refused starts created %d runs (%v)", len(page.Items), err)
	}
	if code, _, _ := run(t, url, "start", "fix_user_emails", "--target-batch-ms", "fast"); code != ExitUsage {
		t.Errorf("--target-batch-ms fast: exit %d, want usage", code)
	}

	code, out, errs := run(t, url, "start", "fix_user_emails", "--batch-size", "500", "--target-batch-ms", "200", "--max-batch-size", "8000", "--output", "json")
	var r api.Run
	if code != ExitOK || json.Unmarshal([]byte(out), &r) != nil {
		t.Fatalf("start: %d %q %q", code, out, errs)
	}
	if o := r.Options; o.TargetBatchMS != 200 || o.BatchSize != 500 || o.MinBatchSize != 5 || o.MaxBatchSize != 8000 {
		t.Fatalf("options %+v; want target 200, batch size 500, bounds 5 and 8000", o)
	}
	ctx := context.Background()
	id, _ := strconv.ParseInt(r.ID, 10, 64)
	if _, err := st.TransitionRun(ctx, id, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendBatches(ctx, id, store.PlanStep{To: "[9]", Batches: []store.KeyRange{{Hi: "[5]", Size: 500}, {Lo: "[5]", Hi: "[9]", Size: 4300}}}); err != nil {
		t.Fatal(err)
	}
	b, err := st.ClaimBatch(ctx, id, 2, store.Claim{Worker: "w", Token: "t", Lease: 60e9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FailBatch(ctx, id, b.Seq, "t", store.Failure{Message: "boom", Final: true}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, url, "show", r.ID)
	if code != ExitOK || !strings.Contains(out, "adaptive: target 200ms, now 4,300 per batch (from 500, between 5 and 8,000)") ||
		!strings.Contains(out, "#2 (5, 9] (4,300 keys) after 1 attempt(s): boom") {
		t.Fatalf("show: %d %q %q", code, out, errs)
	}
}
