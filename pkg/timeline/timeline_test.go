package timeline_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

func TestMessages(t *testing.T) {
	start := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	end := start.Add(90 * time.Second)
	r := store.Run{ID: 7, Definition: "fix_emails", Kind: store.KindBackfill, Params: json.RawMessage(`{"domain":"x.org"}`),
		State: store.RunFailed, Error: "1 of 20 batches failed",
		Options:   store.RunOptions{BatchSize: 1000, MaxInFlight: 4, MaxAttempts: 3, RowsPerSecond: 5000, Sleep: 100 * time.Millisecond},
		Counters:  store.Counters{BatchesSucceeded: 19, BatchesFailed: 1, RowsRead: 19000, RowsWritten: 18990, RowsSkipped: 10},
		StartedAt: &start, FinishedAt: &end}
	for _, tc := range []struct{ got, want string }{
		{timeline.Created(r), `backfill fix_emails, params {"domain":"x.org"}; batch size 1,000, max in flight 4, max attempts 3, 5,000 rows/s, sleep 100ms`},
		{timeline.Finished(r), "failed: 19 batches succeeded, 1 failed; rows read 19,000, written 18,990, skipped 10; took 1m30s — 1 of 20 batches failed"},
		{timeline.Range(store.Batch{Lo: "", Hi: "[100]"}), "(start, 100]"},
		{timeline.Range(store.Batch{Lo: `["a",2]`, Hi: `["b",1]`}), `(("a", 2), ("b", 1)]`},
		{timeline.Range(store.Batch{Lo: "0-1", Hi: "0-9"}), "(0-1, 0-9]"},
		{timeline.User("alice"), "user:alice"},
		{timeline.Creator("scheduler", "scheduler"), "scheduler"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
	b := store.Batch{RunID: 7, Seq: 3, Lo: "[20]", Hi: "[30]", Retries: 1}
	e := timeline.BatchFailed(b, 2, 3, false, "w1", errors.New("boom"))
	if e.Kind != store.EventBatchFailed || e.Actor != "worker:w1" || e.Batch != 3 || e.Key != "" ||
		e.Message != "batch 3 (20, 30] attempt 2 of 3 (after 1 retry) failed, will be retried: boom" {
		t.Errorf("non-final failure: %+v", e)
	}
	e = timeline.BatchFailed(b, 3, 3, true, "w1", errors.New("boom"))
	if e.Key != "failed:3:1" || !strings.Contains(e.Message, "failed for good: boom") {
		t.Errorf("final failure: %+v", e)
	}
}

// The created event names what will hold the run back later: its health
// checks and its adaptive batch size.
func TestCreatedNamesHealthChecks(t *testing.T) {
	r := store.Run{ID: 1, Definition: "fix_emails", Kind: store.KindBackfill,
		Options: store.RunOptions{BatchSize: 1000, MaxInFlight: 4, MaxAttempts: 3, TargetBatchTime: 200 * time.Millisecond,
			HealthChecks: []store.HealthCheck{{Kind: store.HealthLockWaits, Max: 2}, {Kind: store.HealthAutovacuum, Table: "users", Connection: "replica"}}}}
	got := timeline.Created(r)
	for _, want := range []string{"adaptive: target 200ms a batch", "health checks: lock_waits, autovacuum:users@replica"} {
		if !strings.Contains(got, want) {
			t.Errorf("Created = %q, lacks %q", got, want)
		}
	}
}
