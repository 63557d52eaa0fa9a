package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

func opts() store.RunOptions { return store.RunOptions{BatchSize: 10, MaxAttempts: 3, MaxInFlight: 5} }

// fakeClock is a settable clock for Config.Now.
type fakeClock struct{ us atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.us.Store(t.UnixMicro())
	return c
}

func (c *fakeClock) Now() time.Time                  { return time.UnixMicro(c.us.Load()) }
func (c *fakeClock) Advance(d time.Duration)         { c.us.Add(d.Microseconds()) }
func (c *fakeClock) At() time.Time                   { return time.UnixMicro(c.us.Load()).UTC() }
func (c *fakeClock) After(d time.Duration) time.Time { return c.At().Add(d) }

// runWithBatches creates a running run with n planned batches.
func runWithBatches(t *testing.T, s store.Store, n int) store.Run {
	t.Helper()
	ctx := context.Background()
	r, err := s.CreateRun(ctx, store.NewRun{Definition: "layout", Kind: store.KindBackfill, CreatedBy: "alice", Options: opts()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	krs := make([]store.KeyRange, n)
	for i := range krs {
		krs[i] = store.KeyRange{Lo: fmt.Sprint(i * 10), Hi: fmt.Sprint((i + 1) * 10)}
	}
	if _, err := s.AppendBatches(ctx, r.ID, store.PlanStep{To: fmt.Sprint(n * 10), Done: true, Batches: krs}); err != nil {
		t.Fatal(err)
	}
	return r
}

// keys lists every key under prefix, sorted, without the prefix.
func keys(t *testing.T, client *redis.Client, prefix string) []string {
	t.Helper()
	var out []string
	iter := client.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		out = append(out, strings.TrimPrefix(iter.Val(), prefix))
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestKeyLayoutStaysBounded: claims, lease extensions, failed attempts and
// retries leave no keys behind; a finished run keeps exactly its hash, its
// batches and their indexes.
func TestKeyLayoutStaysBounded(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	r := runWithBatches(t, s, n)
	for seq := int64(1); seq <= n; seq++ {
		if _, err := s.EnqueueBatch(ctx, r.ID, seq); err != nil {
			t.Fatal(err)
		}
		for attempt := 1; attempt <= 3; attempt++ {
			tok := fmt.Sprintf("%d-%d", seq, attempt)
			if _, err := s.ClaimBatch(ctx, r.ID, seq, store.Claim{Worker: "w", Token: tok, Lease: time.Minute}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ExtendClaim(ctx, r.ID, seq, tok, time.Minute); err != nil {
				t.Fatal(err)
			}
			if attempt < 3 {
				if _, err := s.FailBatch(ctx, r.ID, seq, tok, store.Failure{Message: "again", Final: attempt == 2}); err != nil {
					t.Fatal(err)
				}
				if attempt == 2 {
					if _, err := s.RetryBatches(ctx, r.ID, &seq); err != nil {
						t.Fatal(err)
					}
				}
				continue
			}
			if _, err := s.CompleteBatch(ctx, r.ID, seq, tok, store.Result{RowsWritten: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.TransitionRun(ctx, r.ID, store.RunSucceeded, nil); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(r.ID)
	want := []string{
		"run:" + id,
		"run:" + id + ":batches",
		"run:" + id + ":bstate:succeeded",
		"runs",
		"runs:by:alice",
		"runs:def:layout",
		"runs:kind:backfill",
		"runs:seq",
		"runs:state:succeeded",
	}
	for seq := 1; seq <= n; seq++ {
		want = append(want, fmt.Sprintf("run:%s:b:%d", id, seq))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, keys(t, client, prefix)); diff != "" {
		t.Errorf("keys after a finished run (-want +got):\n%s", diff)
	}
	b, err := s.GetBatch(ctx, r.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.ClaimToken != "" || b.LeaseUntil != nil || b.Attempts != 3 || b.Retries != 1 {
		t.Errorf("finished batch keeps claim data or miscounts: %+v", b)
	}
}

// TestClockComesFromConfig: leases and timestamps follow Config.Now, not the
// server's clock, to the microsecond.
func TestClockComesFromConfig(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC))
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := runWithBatches(t, s, 1)
	if want := clock.At(); !r.CreatedAt.Equal(want) || r.CreatedAt.Location() != time.UTC || r.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("created_at %v, want %v in UTC to the microsecond", r.CreatedAt, want)
	}
	b, err := s.ClaimBatch(ctx, r.ID, 1, store.Claim{Token: "a", Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.After(time.Minute); b.LeaseUntil == nil || !b.LeaseUntil.Equal(want) {
		t.Errorf("lease until %v, want %v", b.LeaseUntil, want)
	}
	if !b.StartedAt.Equal(clock.At()) {
		t.Errorf("started_at %v, want %v", b.StartedAt, clock.At())
	}
	clock.Advance(59 * time.Second)
	if _, err := s.ClaimBatch(ctx, r.ID, 1, store.Claim{Token: "b", Lease: time.Minute}); !errors.Is(err, store.ErrBatchClaimed) {
		t.Fatalf("claim before the lease ends: %v, want ErrBatchClaimed", err)
	}
	ext, err := s.ExtendClaim(ctx, r.ID, 1, "a", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.After(10 * time.Second); !ext.LeaseUntil.Equal(want) {
		t.Errorf("extended lease until %v, want %v", ext.LeaseUntil, want)
	}
	clock.Advance(10 * time.Second)
	// The lease ends exactly now: it is no longer live.
	got, err := s.ClaimBatch(ctx, r.ID, 1, store.Claim{Token: "c", Lease: time.Nanosecond})
	if err != nil {
		t.Fatalf("claim once the lease ended: %v", err)
	}
	// A lease shorter than a microsecond still lasts one.
	if want := clock.After(time.Microsecond); !got.LeaseUntil.Equal(want) {
		t.Errorf("1ns lease until %v, want %v", got.LeaseUntil, want)
	}
	if _, err := s.CompleteBatch(ctx, r.ID, 1, "a", store.Result{}); !errors.Is(err, store.ErrStaleClaim) {
		t.Errorf("complete by the replaced attempt: %v, want ErrStaleClaim", err)
	}
}

// batchesIn brings the batches of a fresh run into the given states, in
// seq order, and returns the run.
func batchesIn(t *testing.T, s store.Store, states ...store.BatchState) store.Run {
	t.Helper()
	ctx := context.Background()
	r := runWithBatches(t, s, len(states))
	for i, st := range states {
		seq := int64(i + 1)
		tok := fmt.Sprint(seq)
		var err error
		switch st {
		case store.BatchPending:
			continue
		case store.BatchEnqueued:
			_, err = s.EnqueueBatch(ctx, r.ID, seq)
		case store.BatchRunning:
			_, err = s.ClaimBatch(ctx, r.ID, seq, store.Claim{Token: tok, Lease: time.Hour})
		case store.BatchSucceeded:
			if _, err = s.ClaimBatch(ctx, r.ID, seq, store.Claim{Token: tok, Lease: time.Hour}); err == nil {
				_, err = s.CompleteBatch(ctx, r.ID, seq, tok, store.Result{RowsWritten: 2})
			}
		case store.BatchFailed:
			if _, err = s.ClaimBatch(ctx, r.ID, seq, store.Claim{Token: tok, Lease: time.Hour}); err == nil {
				_, err = s.FailBatch(ctx, r.ID, seq, tok, store.Failure{Message: "x", Final: true})
			}
		default:
			t.Fatalf("batchesIn: %s", st)
		}
		if err != nil {
			t.Fatalf("bring batch %d to %s: %v", seq, st, err)
		}
	}
	return r
}

func repeat(st store.BatchState, n int) []store.BatchState {
	out := make([]store.BatchState, n)
	for i := range out {
		out[i] = st
	}
	return out
}

func counters(t *testing.T, s store.Store, id int64) map[store.BatchState]int64 {
	t.Helper()
	r, err := s.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[store.BatchState]int64{}
	for _, st := range store.BatchStates {
		if n := r.Batches(st); n != 0 {
			out[st] = n
		}
	}
	return out
}

// TestCancelRunInSteps: a run with more pending and enqueued batches than
// one step moves is cancelled in several atomic steps with exact counters;
// an interrupted cancel is finished by the next CancelRun.
func TestCancelRunInSteps(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	redisstore.SetStep(s, 4)

	states := append(append(append(repeat(store.BatchPending, 9), repeat(store.BatchEnqueued, 8)...),
		store.BatchRunning, store.BatchSucceeded), repeat(store.BatchPending, 3)...)
	r := batchesIn(t, s, states...)
	got, err := s.CancelRun(ctx, r.ID)
	if err != nil {
		t.Fatalf("CancelRun: %v", err)
	}
	if got.State != store.RunCancelling || got.FinishedAt != nil {
		t.Errorf("CancelRun with a running batch: %s finished %v, want cancelling", got.State, got.FinishedAt)
	}
	want := map[store.BatchState]int64{store.BatchCancelled: 20, store.BatchRunning: 1, store.BatchSucceeded: 1}
	if diff := cmp.Diff(want, counters(t, s, r.ID)); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	p, err := s.ListBatches(ctx, r.ID, store.BatchFilter{States: []store.BatchState{store.BatchCancelled}, Limit: store.MaxLimit})
	if err != nil || len(p.Items) != 20 {
		t.Fatalf("cancelled batches listed: %d, %v", len(p.Items), err)
	}

	// Interrupted after one step, with nothing running.
	r2 := batchesIn(t, s, repeat(store.BatchEnqueued, 10)...)
	done, err := redisstore.CancelStep(ctx, s, r2.ID)
	if err != nil || done {
		t.Fatalf("first step: done %v, %v", done, err)
	}
	mid, _ := s.GetRun(ctx, r2.ID)
	if mid.State != store.RunCancelling || mid.BatchesCancelled != 4 || mid.BatchesEnqueued != 6 {
		t.Fatalf("after one step: %s %+v, want cancelling with 4 cancelled", mid.State, mid.Counters)
	}
	if _, err := s.ClaimBatch(ctx, r2.ID, 10, store.Claim{Token: "late", Lease: time.Minute}); !errors.Is(err, store.ErrRunNotRunning) {
		t.Errorf("claim during a cancel: %v, want ErrRunNotRunning", err)
	}
	got, err = s.CancelRun(ctx, r2.ID)
	if err != nil {
		t.Fatalf("CancelRun after an interrupted cancel: %v", err)
	}
	if got.State != store.RunCancelled || got.FinishedAt == nil || got.BatchesCancelled != 10 || got.InFlight() != 0 {
		t.Errorf("finished cancel: %s finished %v counters %+v", got.State, got.FinishedAt, got.Counters)
	}
	var te *store.TransitionError
	if _, err := s.CancelRun(ctx, r2.ID); !errors.As(err, &te) || te.From != "cancelled" {
		t.Errorf("CancelRun of the cancelled run: %v, want a TransitionError from cancelled", err)
	}
	// A cancelling run that is not mid-cancel refuses a second cancel.
	if _, err := s.CancelRun(ctx, r.ID); !errors.As(err, &te) || te.From != "cancelling" {
		t.Errorf("CancelRun of a cancelling run: %v, want a TransitionError from cancelling", err)
	}
}

// TestRetryBatchesInSteps: many failed batches move in steps; a failed run
// becomes running with the last step, not before.
func TestRetryBatchesInSteps(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	redisstore.SetStep(s, 5)
	r := batchesIn(t, s, append(repeat(store.BatchFailed, 12), store.BatchSucceeded)...)
	if _, err := s.TransitionRun(ctx, r.ID, store.RunFailed, &store.TransitionOptions{Error: "12 failed"}); err != nil {
		t.Fatal(err)
	}
	moved, done, err := redisstore.RetryStep(ctx, s, r.ID)
	if err != nil || moved != 5 || done {
		t.Fatalf("first step: moved %d done %v, %v", moved, done, err)
	}
	if mid, _ := s.GetRun(ctx, r.ID); mid.State != store.RunFailed || mid.BatchesPending != 5 || mid.BatchesFailed != 7 {
		t.Fatalf("after one step: %s %+v, want still failed with 5 pending", mid.State, mid.Counters)
	}
	n, err := s.RetryBatches(ctx, r.ID, nil)
	if err != nil || n != 7 {
		t.Fatalf("RetryBatches: %d, %v; want the 7 left", n, err)
	}
	got, _ := s.GetRun(ctx, r.ID)
	if got.State != store.RunRunning || got.Error != "" || got.FinishedAt != nil {
		t.Errorf("retried run: %s error %q finished %v", got.State, got.Error, got.FinishedAt)
	}
	want := map[store.BatchState]int64{store.BatchPending: 12, store.BatchSucceeded: 1}
	if diff := cmp.Diff(want, counters(t, s, r.ID)); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}

// TestFlowSpecKeys: a spec flow keeps its versions after it is deleted;
// flowlive:{flow} holds its live runs and is gone once none is live.
func TestFlowSpecKeys(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		p := store.SaveFlowSpec{Name: "f", Spec: []byte(fmt.Sprintf(`{"rev":%d}`, i)), Create: i == 1}
		if _, err := s.SaveFlowSpec(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.CreateRun(ctx, store.NewRun{Definition: "f", Kind: store.KindFlow, SpecVersion: 2, Options: opts()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := client.ZRange(ctx, prefix+"flowlive:f", 0, -1).Result(); !slices.Equal(got, []string{fmt.Sprint(r.ID)}) {
		t.Fatalf("flowlive:f = %v, want the live run %d", got, r.ID)
	}
	if _, err := s.CancelRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFlowSpec(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(r.ID)
	want := []string{
		"layout:flowlive",
		"run:" + id,
		"runs",
		"runs:def:f",
		"runs:kind:flow",
		"runs:seq",
		"runs:state:cancelled",
		"spec:f:1",
		"spec:f:2",
		"specs:f",
	}
	if diff := cmp.Diff(want, keys(t, client, prefix)); diff != "" {
		t.Errorf("keys after a deleted spec flow (-want +got):\n%s", diff)
	}
}

// TestFlowLiveIndexedOnFirstUse: live flow runs stored by a dripflow that
// kept no flowlive keys still keep their flow busy: the first check indexes
// them.
func TestFlowLiveIndexedOnFirstUse(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	n := store.NewRun{Definition: "old", Kind: store.KindFlow, Options: opts()}
	old, err := s.CreateRun(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionRun(ctx, old.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	if err := client.Del(ctx, prefix+"flowlive:old", prefix+"layout:flowlive").Err(); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateRun(ctx, n)
	var busy *store.FlowBusyError
	if !errors.As(err, &busy) || busy.RunID != old.ID || busy.State != store.RunRunning {
		t.Fatalf("CreateRun beside a run from before flowlive: %v, want FlowBusyError for run %d running", err, old.ID)
	}
	if _, err := s.TransitionRun(ctx, old.ID, store.RunSucceeded, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRun(ctx, n); err != nil {
		t.Fatalf("CreateRun once the old run ended: %v", err)
	}
}

// TestRetryInStepsRefusedWhenBusy: a stepped retry of a failed flow run
// checks the flow at every step, so a run created between two steps keeps
// the retried run failed.
func TestRetryInStepsRefusedWhenBusy(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	redisstore.SetStep(s, 2)
	n := store.NewRun{Definition: "stepped", Kind: store.KindFlow, Options: opts()}
	r, err := s.CreateRun(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
		t.Fatal(err)
	}
	krs := []store.KeyRange{{Lo: "", Hi: "1"}, {Lo: "1", Hi: "2"}, {Lo: "2", Hi: "3"}}
	if _, err := s.AppendBatches(ctx, r.ID, store.PlanStep{To: "3", Done: true, Batches: krs}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 3; seq++ {
		tok := fmt.Sprint(seq)
		if _, err := s.ClaimBatch(ctx, r.ID, seq, store.Claim{Token: tok, Lease: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FailBatch(ctx, r.ID, seq, tok, store.Failure{Message: "x", Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TransitionRun(ctx, r.ID, store.RunFailed, nil); err != nil {
		t.Fatal(err)
	}
	if moved, done, err := redisstore.RetryStep(ctx, s, r.ID); err != nil || moved != 2 || done {
		t.Fatalf("first step: moved %d done %v, %v", moved, done, err)
	}
	other, err := s.CreateRun(ctx, n)
	if err != nil {
		t.Fatalf("CreateRun while the failed run is mid-retry: %v", err)
	}
	_, err = s.RetryBatches(ctx, r.ID, nil)
	var busy *store.FlowBusyError
	if !errors.As(err, &busy) || busy.RunID != other.ID {
		t.Fatalf("rest of the retry: %v, want FlowBusyError for run %d", err, other.ID)
	}
	got, _ := s.GetRun(ctx, r.ID)
	want := map[store.BatchState]int64{store.BatchPending: 2, store.BatchFailed: 1}
	if diff := cmp.Diff(want, counters(t, s, r.ID)); got.State != store.RunFailed || diff != "" {
		t.Errorf("refused retry: run %s, counters (-want +got):\n%s", got.State, diff)
	}
}
