// Package storetest is the conformance suite every store.Store backend runs.
// A backend passes when it behaves exactly as the store.Store documentation
// says: every legal and illegal state transition, the atomic claim and
// complete under 50 racing goroutines with exact final counts, keyset
// pagination over 10,000 batches, not-found and conflict errors, flows and
// watermarks, flows stored as specs and one live run per flow.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return newIsolatedStore(t) // fresh, empty, closed by t.Cleanup
//		})
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// NewStore returns a fresh, empty store for one test and arranges for it to
// be closed and removed when the test ends.
type NewStore func(t *testing.T) store.Store

// Run runs the whole conformance suite against the backend newStore builds.
// Subtests run in parallel, each on its own store.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateAndGetRun", testCreateAndGetRun},
		{"CreateRunRejectsBadInput", testCreateRunRejectsBadInput},
		{"RunNotFound", testRunNotFound},
		{"RunTransitions", testRunTransitions},
		{"RunTransitionTimestamps", testRunTransitionTimestamps},
		{"SetRunTotal", testSetRunTotal},
		{"RunHealthChecks", testRunHealthChecks},
		{"CreateRunRejectsBadHealthChecks", testCreateRunRejectsBadHealthChecks},
		{"SetRunHold", testSetRunHold},
		{"ListRunsFilters", testListRunsFilters},
		{"ListRunsPagination", testListRunsPagination},
		{"ListRunsByKind", testListRunsByKind},
		{"ListRejectsBadInput", testListRejectsBadInput},
		{"AppendBatches", testAppendBatches},
		{"AppendBatchesEnqueued", testAppendBatchesEnqueued},
		{"AppendBatchesNeedsActiveRun", testAppendBatchesNeedsActiveRun},
		{"BatchTransitions", testBatchTransitions},
		{"ClaimNeedsRunningRun", testClaimNeedsRunningRun},
		{"ClaimRejectsBadInput", testClaimRejectsBadInput},
		{"CompleteRecordsResult", testCompleteRecordsResult},
		{"FailAndRetryAttempts", testFailAndRetryAttempts},
		{"ExpiredLeaseIsReclaimed", testExpiredLeaseIsReclaimed},
		{"ExtendClaim", testExtendClaim},
		{"CancellingRunExpiredLeases", testCancellingRunExpiredLeases},
		{"ExpireClaims", testExpireClaims},
		{"RescheduleAndGuardedTransition", testRescheduleAndGuardedTransition},
		{"CancelRun", testCancelRun},
		{"CancelRunWithoutRunningBatches", testCancelRunWithoutRunningBatches},
		{"RetryBatches", testRetryBatches},
		{"RetryOneBatch", testRetryOneBatch},
		{"BatchNotFound", testBatchNotFound},
		{"ListBatchesFilters", testListBatchesFilters},
		{"PaginationOver10kBatches", testPaginationOver10kBatches},
		{"RaceClaimComplete", testRaceClaimComplete},
		{"RaceClaimCompleteExpiringLeases", testRaceClaimCompleteExpiringLeases},
		{"RaceFailComplete", testRaceFailComplete},
		{"RaceAppendBatches", testRaceAppendBatches},
		{"RaceCancelAgainstClaims", testRaceCancelAgainstClaims},
		{"RaceRetryAgainstClaims", testRaceRetryAgainstClaims},
		{"Definitions", testDefinitions},
		{"DefinitionRejectsBadInput", testDefinitionRejectsBadInput},
		{"FlowActivation", testFlowActivation},
		{"Watermarks", testWatermarks},
		{"RaceWatermark", testRaceWatermark},
		{"FlowSpecs", testFlowSpecs},
		{"FlowSpecRejectsBadInput", testFlowSpecRejectsBadInput},
		{"FlowBusyCreateRun", testFlowBusyCreateRun},
		{"FlowBusyRetryAndDelete", testFlowBusyRetryAndDelete},
		{"RaceCreateFlowRun", testRaceCreateFlowRun},
		{"RaceSaveFlowSpec", testRaceSaveFlowSpec},
		{"RunSpecVersion", testRunSpecVersion},
		{"RecordMissedTick", testRecordMissedTick},
		{"Ping", testPing},
		{"RunEvents", testRunEvents},
		{"RunEventKeys", testRunEventKeys},
		{"RunEventsRejectBadInput", testRunEventsRejectBadInput},
		{"RaceRunEvents", testRaceRunEvents},
		{"AdaptiveRunOptions", testAdaptiveRunOptions},
		{"AdaptiveRunOptionsRejected", testAdaptiveRunOptionsRejected},
		{"BatchPlannedSize", testBatchPlannedSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func defaultOptions() store.RunOptions {
	return store.RunOptions{BatchSize: 100, MaxAttempts: 3, MaxInFlight: 10}
}

func newRun(def string) store.NewRun {
	return store.NewRun{
		Definition: def,
		Kind:       store.KindBackfill,
		Params:     json.RawMessage(`{"role":"member"}`),
		CreatedBy:  "alice",
		Options:    defaultOptions(),
	}
}

func mustCreate(t *testing.T, s store.Store, n store.NewRun) store.Run {
	t.Helper()
	r, err := s.CreateRun(ctx(t), n)
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", n.Definition, err)
	}
	return r
}

func mustTransition(t *testing.T, s store.Store, id int64, to store.RunState) store.Run {
	t.Helper()
	r, err := s.TransitionRun(ctx(t), id, to, nil)
	if err != nil {
		t.Fatalf("TransitionRun(%d, %s): %v", id, to, err)
	}
	if r.State != to {
		t.Fatalf("TransitionRun(%d, %s) returned state %s", id, to, r.State)
	}
	return r
}

// runningRun creates a run and starts it.
func runningRun(t *testing.T, s store.Store) store.Run {
	t.Helper()
	r := mustCreate(t, s, newRun("backfill_users"))
	return mustTransition(t, s, r.ID, store.RunRunning)
}

func keyOf(i int) string { return fmt.Sprintf("i:%020d", i) }

// ranges returns n consecutive key ranges starting after key from.
func ranges(from, n int) []store.KeyRange {
	out := make([]store.KeyRange, n)
	for i := range out {
		lo := ""
		if from+i > 0 {
			lo = keyOf(from + i)
		}
		out[i] = store.KeyRange{Lo: lo, Hi: keyOf(from + i + 1)}
	}
	return out
}

// plan appends n batches to the run in steps of at most 1000.
func plan(t *testing.T, s store.Store, runID int64, n int) []store.Batch {
	t.Helper()
	r, err := s.GetRun(ctx(t), runID)
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	start := int(r.BatchesTotal())
	var all []store.Batch
	for done := 0; done < n; {
		step := min(1000, n-done)
		from := r.PlanCursor
		bs, err := s.AppendBatches(ctx(t), runID, store.PlanStep{
			From:    from,
			To:      keyOf(start + done + step),
			Batches: ranges(start+done, step),
		})
		if err != nil {
			t.Fatalf("AppendBatches(%d from %q): %v", step, from, err)
		}
		all = append(all, bs...)
		r.PlanCursor = keyOf(start + done + step)
		done += step
	}
	return all
}

func mustClaim(t *testing.T, s store.Store, b store.Batch, token string) store.Batch {
	t.Helper()
	got, err := s.ClaimBatch(ctx(t), b.RunID, b.Seq, store.Claim{Worker: "w-" + token, Token: token, Lease: time.Minute})
	if err != nil {
		t.Fatalf("ClaimBatch(%s, %s): %v", b.ID(), token, err)
	}
	return got
}

func mustGetRun(t *testing.T, s store.Store, id int64) store.Run {
	t.Helper()
	r, err := s.GetRun(ctx(t), id)
	if err != nil {
		t.Fatalf("GetRun(%d): %v", id, err)
	}
	return r
}

func mustGetBatch(t *testing.T, s store.Store, runID, seq int64) store.Batch {
	t.Helper()
	b, err := s.GetBatch(ctx(t), runID, seq)
	if err != nil {
		t.Fatalf("GetBatch(%d, %d): %v", runID, seq, err)
	}
	return b
}

// allBatches lists every batch of the run, following cursors.
func allBatches(t *testing.T, s store.Store, runID int64, f store.BatchFilter) []store.Batch {
	t.Helper()
	var out []store.Batch
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("ListBatches never ended")
		}
		p, err := s.ListBatches(ctx(t), runID, f)
		if err != nil {
			t.Fatalf("ListBatches(%d, %+v): %v", runID, f, err)
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		f.Cursor = p.NextCursor
	}
}

// assertCounters checks the run's batch counters against want and against
// the batches the store lists, so counters and rows can never drift apart.
func assertCounters(t *testing.T, s store.Store, runID int64, want map[store.BatchState]int64) store.Run {
	t.Helper()
	r := mustGetRun(t, s, runID)
	listed := map[store.BatchState]int64{}
	var rowsRead, rowsWritten, rowsSkipped int64
	for _, b := range allBatches(t, s, runID, store.BatchFilter{Limit: store.MaxLimit}) {
		listed[b.State]++
		if b.State == store.BatchSucceeded {
			rowsRead += b.RowsRead
			rowsWritten += b.RowsWritten
			rowsSkipped += b.RowsSkipped
		}
	}
	for _, st := range store.BatchStates {
		if got := r.Batches(st); got != listed[st] {
			t.Errorf("run %d: counter %s = %d but %d batches are %s", runID, st, got, listed[st], st)
		}
		if want != nil && r.Batches(st) != want[st] {
			t.Errorf("run %d: %s batches = %d, want %d", runID, st, r.Batches(st), want[st])
		}
	}
	if r.RowsRead != rowsRead || r.RowsWritten != rowsWritten || r.RowsSkipped != rowsSkipped {
		t.Errorf("run %d: rows read/written/skipped = %d/%d/%d, succeeded batches sum to %d/%d/%d",
			runID, r.RowsRead, r.RowsWritten, r.RowsSkipped, rowsRead, rowsWritten, rowsSkipped)
	}
	return r
}

func wantErr(t *testing.T, op string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %v", op, targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("%s: got error %v, want it to match %v", op, err, target)
		}
	}
}

func wantTransitionError(t *testing.T, op string, err error, from, to string) {
	t.Helper()
	var te *store.TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("%s: got %v, want a *store.TransitionError", op, err)
	}
	if te.From != from || te.To != to {
		t.Fatalf("%s: TransitionError from %q to %q, want from %q to %q", op, te.From, te.To, from, to)
	}
	wantErr(t, op, err, store.ErrIllegalTransition, store.ErrConflict)
}

func wantArgumentError(t *testing.T, op string, err error, field string) {
	t.Helper()
	var ae *store.ArgumentError
	if !errors.As(err, &ae) {
		t.Fatalf("%s: got %v, want a *store.ArgumentError for %s", op, err, field)
	}
	if ae.Field != field {
		t.Fatalf("%s: ArgumentError field %q, want %q (%v)", op, ae.Field, field, err)
	}
	wantErr(t, op, err, store.ErrInvalidArgument)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// recent reports whether tm lies within the last minute (clock skew between
// the test and a database server is tolerated).
func recent(tm time.Time) bool {
	d := time.Since(tm)
	return d > -time.Minute && d < time.Minute
}
