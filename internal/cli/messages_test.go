package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// What the CLI says when it is used wrongly: in the usage text's terms,
// with the nearest command or flag, and without a request when the input
// is wrong.
func TestRunsMessages(t *testing.T) {
	url, _ := server(t)
	for _, tc := range []struct {
		args    []string
		code    int
		want    []string
		notWant []string
	}{
		{[]string{"strat", "x"}, ExitUsage, []string{`unknown command "strat" (did you mean "start"?)`}, nil},
		{[]string{"start", "x", "--batchsize", "5"}, ExitUsage,
			[]string{"unknown flag --batchsize (did you mean --batch-size?)", `run "dripflow runs help" for the flags`},
			[]string{"-sleep-ms", "(default", "Usage of"}},
		{[]string{"start", "x", "--max-attempts", "many"}, ExitUsage, []string{`--max-attempts "many": must be a whole number`}, []string{"parse error"}},
		{[]string{"start", "x", "--batch-timeout", "soon"}, ExitUsage, []string{`--batch-timeout "soon": must be a duration such as 500ms, 30s or 2m`}, nil},
		{[]string{"start", "x", "--batch-size"}, ExitUsage, []string{"--batch-size needs a value"}, nil},
		{[]string{"show", "abc"}, ExitUsage, []string{`invalid run id "abc": run ids are positive numbers such as 7`}, []string{"not found"}},
		{[]string{"retry", "0"}, ExitUsage, []string{`invalid run id "0"`}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errs := run(t, url, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not say %q", errs, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(errs, w) {
					t.Errorf("stderr %q says %q", errs, w)
				}
			}
		})
	}
	code, _, errs := run(t, url, "start", "x", "--help")
	if code != ExitOK || !strings.Contains(errs, "usage: dripflow runs") {
		t.Errorf("--help: exit %d %q", code, errs)
	}
	code, _, errs = run(t, "http://127.0.0.1:1", "list")
	if code != ExitError || !strings.Contains(errs, "cannot reach the dripflow web server at http://127.0.0.1:1") || !strings.Contains(errs, "DRIPFLOW_URL") {
		t.Errorf("unreachable server: exit %d %q", code, errs)
	}
}

// runs show prints the errors of failed batches, and retrying a run with
// nothing to retry says why in words rather than as a state transition.
func TestRunsShowFailuresAndRetryMessages(t *testing.T) {
	url, st := server(t)
	ctx := context.Background()
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "fix_user_emails", Kind: store.KindBackfill,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	bs, err := st.AppendBatches(ctx, r.ID, store.PlanStep{To: "20", Done: true,
		Batches: []store.KeyRange{{Lo: "", Hi: "10"}, {Lo: "10", Hi: "20"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.ClaimBatch(ctx, r.ID, bs[0].Seq, store.Claim{Worker: "w1", Token: "t1", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FailBatch(ctx, r.ID, b.Seq, "t1", store.Failure{Message: "pq: duplicate key value violates unique constraint \"users_email_key\"\nstack…", Final: true}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, url, "show", strconv.FormatInt(r.ID, 10))
	if code != ExitOK || !strings.Contains(out, "failed batches:") ||
		!strings.Contains(out, `#1 (start, 10] after 1 attempt(s): pq: duplicate key value violates unique constraint "users_email_key"`) ||
		strings.Contains(out, "stack…") {
		t.Fatalf("show: %d %q %q", code, out, errs)
	}

	// Finish the run, then retry it: nothing to retry, said as such.
	b, err = st.ClaimBatch(ctx, r.ID, bs[1].Seq, store.Claim{Worker: "w1", Token: "t2", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CompleteBatch(ctx, r.ID, b.Seq, "t2", store.Result{RowsRead: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RetryBatches(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	b, err = st.ClaimBatch(ctx, r.ID, bs[0].Seq, store.Claim{Worker: "w1", Token: "t3", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CompleteBatch(ctx, r.ID, b.Seq, "t3", store.Result{RowsRead: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.TransitionRun(ctx, r.ID, store.RunSucceeded, nil); err != nil {
		t.Fatal(err)
	}
	code, _, errs = run(t, url, "retry", strconv.FormatInt(r.ID, 10))
	if code != ExitError || !strings.Contains(errs, "succeeded: it has no failed batch to retry") || strings.Contains(errs, "cannot go from") {
		t.Fatalf("retry a succeeded run: %d %q", code, errs)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
