package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/client"
)

// A run with a batch that fails both its attempts, then is retried through
// the API once the data is fixed, has the whole story on its timeline, in
// order, read through the API from the web process: who created it, that
// the scheduler started and throttled it (once), each failed attempt with
// its error, how it ended, who retried, how it ended after the retry.
func TestProcessTimeline(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	const items, size = 2_000, 500
	c.seedItems(items)
	if err := c.db.Exec("UPDATE e2e_items SET poison = true WHERE id = 1555").Error; err != nil {
		t.Fatal(err)
	}
	base := c.web()
	c.scheduler()
	c.worker(2)
	api1 := client.New(base, webToken)
	two, size500, rps := 2, size, 5000
	created, err := api1.CreateRun(ctx, api.CreateRun{Definition: "e2e_bump", BatchSize: &size500, MaxAttempts: &two, RowsPerSecond: &rps})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(status string) api.Run {
		t.Helper()
		var r api.Run
		c.waitFor("run "+status, 2*time.Minute, func() bool {
			r, err = api1.Run(ctx, created.ID)
			return err == nil && r.Status == status
		})
		return r
	}
	wait("failed")
	if err := c.db.Exec("UPDATE e2e_items SET poison = false").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := api1.Retry(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	wait("succeeded")
	var events []api.RunEvent
	// The finished event follows the run's last transition.
	c.waitFor("the second finished event", 30*time.Second, func() bool {
		events, err = api1.AllTimeline(ctx, created.ID)
		n := 0
		for _, e := range events {
			if e.Kind == api.EventFinished {
				n++
			}
		}
		return err == nil && n == 2
	})

	type step struct{ kind, actor, batch, msg string }
	want := []step{
		{api.EventCreated, "user:admin", "", "created by admin (API): backfill e2e_bump"},
		{api.EventStarted, "scheduler", "", "started by the scheduler"},
		{api.EventBatchFailed, "worker:", "4", "batch 4 (1500, 2000] attempt 1 of 2 failed, will be retried: "},
		{api.EventBatchFailed, "worker:", "4", "batch 4 (1500, 2000] attempt 2 of 2 failed for good: "},
		{api.EventFinished, "scheduler", "", "failed: 3 batches succeeded, 1 failed"},
		{api.EventRetried, "user:admin", "", "1 failed batch retried by admin (API)"},
		{api.EventFinished, "scheduler", "", "succeeded: 4 batches succeeded; rows read 2,000"},
	}
	var got []api.RunEvent
	throttled := 0
	for i, e := range events {
		if i > 0 && e.ID <= events[i-1].ID || e.At.Before(events[max(i-1, 0)].At) {
			t.Errorf("event %s is out of order after %s", e.ID, events[i-1].ID)
		}
		if e.Kind == api.EventThrottled {
			throttled++
			if e.Actor != "scheduler" || !strings.Contains(e.Message, "rows_per_second 5,000") {
				t.Errorf("throttled event: %+v", e)
			}
			continue
		}
		got = append(got, e)
	}
	if throttled != 1 {
		t.Errorf("%d throttled events, want exactly one (throttling is noted once, not per batch)", throttled)
	}
	if len(got) != len(want) {
		t.Fatalf("timeline (throttling aside) has %d events, want %d:\n%s", len(got), len(want), dump(got))
	}
	for i, w := range want {
		e := got[i]
		if e.Kind != w.kind || !strings.HasPrefix(e.Actor, w.actor) || e.Batch != w.batch || !strings.HasPrefix(e.Message, w.msg) {
			t.Errorf("event %d = %s %s #%s %q, want %s %s #%s %q…", i, e.Kind, e.Actor, e.Batch, e.Message, w.kind, w.actor, w.batch, w.msg)
		}
	}
	for _, i := range []int{2, 3} {
		if !strings.Contains(got[i].Message, "poison row 1555") {
			t.Errorf("failed attempt %q does not say why", got[i].Message)
		}
	}
}

func dump(evs []api.RunEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.ID + " " + e.Kind + " " + e.Actor + " #" + e.Batch + " " + e.Message + "\n")
	}
	return b.String()
}
