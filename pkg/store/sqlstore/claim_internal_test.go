package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
)

var internalDialects = []struct {
	name string
	url  func(testing.TB) string
}{
	{"postgres", testenv.PostgresURL},
	{"mysql", testenv.MySQLURL},
	{"sqlite", testenv.SQLiteURL},
}

func openInternal(t *testing.T, url string) *Store {
	t.Helper()
	ctx := context.Background()
	if err := MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, url, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The claim rule in Go (claimRefusal) and in SQL (claimableSQL,
// claimRunSQL) answer alike, and as the Store contract says, for every
// batch state, run state and lease, on every database.
func TestClaimRule(t *testing.T) {
	batchStates := []store.BatchState{store.BatchPending, store.BatchEnqueued, store.BatchRunning,
		store.BatchSucceeded, store.BatchFailed, store.BatchCancelled}
	runStates := []store.RunState{store.RunScheduled, store.RunRunning, store.RunPaused,
		store.RunCancelling, store.RunSucceeded, store.RunFailed, store.RunCancelled}
	for _, d := range internalDialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s := openInternal(t, d.url(t))
			r, err := s.CreateRun(ctx, store.NewRun{Definition: "claim-rule", Kind: store.KindBackfill, CreatedBy: "test",
				Options: store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TransitionRun(ctx, r.ID, store.RunRunning, nil); err != nil {
				t.Fatal(err)
			}
			now := s.clock()
			past, future := now.Add(-time.Minute).Truncate(time.Microsecond), now.Add(time.Minute).Truncate(time.Microsecond)
			leases := []struct {
				name  string
				until *time.Time
			}{{"no lease", nil}, {"expired lease", &past}, {"live lease", &future}}
			type batchCase struct {
				seq   int64
				state store.BatchState
				lease int
			}
			var cases []batchCase
			step := store.PlanStep{Done: true}
			for _, st := range batchStates {
				for li := range leases {
					seq := int64(len(cases) + 1)
					cases = append(cases, batchCase{seq, st, li})
					step.Batches = append(step.Batches, store.KeyRange{Lo: fmt.Sprint(seq - 1), Hi: fmt.Sprint(seq)})
					step.To = fmt.Sprint(seq)
				}
			}
			if _, err := s.AppendBatches(ctx, r.ID, step); err != nil {
				t.Fatal(err)
			}
			// The rows are set straight, as a claim would find them.
			for _, c := range cases {
				if err := s.db.Table(batchesTable).Where("run_id = ? AND seq = ?", r.ID, c.seq).
					Updates(map[string]any{"state": string(c.state), "lease_until": leases[c.lease].until}).Error; err != nil {
					t.Fatal(err)
				}
			}
			for _, rs := range runStates {
				if err := s.db.Table(runsTable).Where("id = ?", r.ID).Update("state", string(rs)).Error; err != nil {
					t.Fatal(err)
				}
				for _, c := range cases {
					want := rs == store.RunRunning && (c.state == store.BatchPending || c.state == store.BatchEnqueued ||
						c.state == store.BatchFailed || (c.state == store.BatchRunning && c.lease != 2))
					goOK := claimRefusal(batchRow{State: string(c.state), LeaseUntil: leases[c.lease].until}, rs, now) == nil
					var n int64
					if err := s.db.Raw("SELECT count(*) FROM "+batchesTable+" b JOIN "+runsTable+" r ON r.id = b.run_id"+
						" WHERE b.run_id = @run AND b.seq = @seq AND "+claimableSQL("b")+" AND "+claimRunSQL("r"),
						map[string]any{"run": r.ID, "seq": c.seq, "now": now}).Scan(&n).Error; err != nil {
						t.Fatal(err)
					}
					if goOK != want || (n == 1) != want {
						t.Errorf("run %s, batch %s with %s: Go says %v, SQL says %v, want %v",
							rs, c.state, leases[c.lease].name, goOK, n == 1, want)
					}
				}
			}
		})
	}
}

// A claim's refusal names the cause in the contract's order.
func TestClaimRefusalOrder(t *testing.T) {
	live := time.Now().Add(time.Minute)
	for _, tt := range []struct {
		b    batchRow
		run  store.RunState
		want error
	}{
		{batchRow{State: "succeeded"}, store.RunPaused, store.ErrBatchFinished},
		{batchRow{State: "running", LeaseUntil: &live}, store.RunPaused, store.ErrRunNotRunning},
		{batchRow{State: "running", LeaseUntil: &live}, store.RunRunning, store.ErrBatchClaimed},
		{batchRow{State: "pending"}, store.RunRunning, nil},
	} {
		if err := claimRefusal(tt.b, tt.run, time.Now()); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("claimRefusal(%s, run %s) = %v, want %v", tt.b.State, tt.run, err, tt.want)
		}
	}
}

// missingSlotCheck fails a statement when no counter slot was updated, with
// an error isMissingSlot recognises, and passes when one was, on every
// database; other errors are not taken for it.
func TestMissingSlotSignal(t *testing.T) {
	for _, d := range internalDialects {
		t.Run(d.name, func(t *testing.T) {
			s := openInternal(t, d.url(t))
			slots := func(where string) error {
				var v int64
				return s.db.Raw("SELECT " + missingSlotCheck("SELECT count(*) FROM "+countersTable+" WHERE "+where) + " AS slots").Scan(&v).Error
			}
			err := slots("run_id = -1")
			if err == nil || !isMissingSlot(err) {
				t.Fatalf("no slot: error %v, want one isMissingSlot recognises", err)
			}
			r, cerr := s.CreateRun(context.Background(), store.NewRun{Definition: "slots", Kind: store.KindBackfill, CreatedBy: "test",
				Options: store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 1}})
			if cerr != nil {
				t.Fatal(cerr)
			}
			if err := slots(fmt.Sprintf("run_id = %d AND slot = 0", r.ID)); err != nil {
				t.Fatalf("one slot: %v, want no error", err)
			}
			var v int64
			other := s.db.Raw("SELECT no_such_column FROM " + countersTable).Scan(&v).Error
			if other == nil || isMissingSlot(other) {
				t.Fatalf("an unrelated error %v taken for a missing slot", other)
			}
		})
	}
}
