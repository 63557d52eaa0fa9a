package scheduler

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
)

// completeTaking claims and completes batch seq of run id as a batch that
// took d.
func completeTaking(t *testing.T, st store.Store, id, seq int64, d time.Duration) {
	t.Helper()
	if _, err := st.CompleteBatch(context.Background(), id, seq, claim(t, st, id, seq), store.Result{RowsRead: 1, Duration: d}); err != nil {
		t.Fatalf("complete batch %d: %v", seq, err)
	}
}

func getBatch(t *testing.T, st store.Store, id, seq int64) store.Batch {
	t.Helper()
	b, err := st.GetBatch(context.Background(), id, seq)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sizesOf returns the planned sizes of the run's batches, in seq order.
func sizesOf(t *testing.T, st store.Store, id int64) []int {
	t.Helper()
	var out []int
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := st.ListBatches(context.Background(), id, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Items {
			out = append(out, b.Size)
		}
		if page.NextCursor == "" {
			return out
		}
		f.Cursor = page.NextCursor
	}
}

// An adaptive run whose batches take 5 ms plus 100 µs a key, with a
// target of 200 ms, starts at its batch size of 50, grows (at most ×2 a
// step) to about 1,950 and holds there; the size shows in the gauge and
// on every batch, the big changes on the timeline; a new planner (a
// restarted scheduler) goes on from the last planned size; the gauge goes
// when the run ends.
func TestPlannerAdaptsBatchSize(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	pipe := &fakePipeline{n: 150_000}
	p, _ := newTestPlanner(t, st, pipe)
	r := newTestRun(t, st, store.RunOptions{BatchSize: 50, MaxInFlight: 3, TargetBatchTime: 200 * time.Millisecond,
		MinBatchSize: 10, MaxBatchSize: 20_000})
	took := func(size int) time.Duration { return 5*time.Millisecond + time.Duration(size)*100*time.Microsecond }
	run := func(p *runPlanner, batches int) {
		t.Helper()
		for range batches {
			got := getRun(t, st, r.ID)
			if got.State.Terminal() {
				return
			}
			seq := got.BatchesSucceeded + 1 // batches finish in order here
			completeTaking(t, st, r.ID, seq, took(getBatch(t, st, r.ID, seq).Size))
			p.advance(ctx, getRun(t, st, r.ID))
		}
	}
	p.advance(ctx, r)
	run(p, 25)

	sizes := sizesOf(t, st, r.ID)
	if sizes[0] != 50 {
		t.Fatalf("first batch planned with %d keys, want the batch size 50", sizes[0])
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > 2*sizes[i-1] {
			t.Fatalf("the size more than doubled in one step: %v", sizes)
		}
	}
	last := sizes[len(sizes)-1]
	for _, n := range sizes[len(sizes)-8:] {
		if n < 1700 || n > 2200 {
			t.Fatalf("sizes %v; want the last ones near 1,950 (200 ms at 5 ms + 100 µs a key)", sizes)
		}
	}
	runLabel := strconv.FormatInt(r.ID, 10)
	if g := gauge(t, metrics.RunBatchSize, "run", runLabel); g != float64(last) {
		t.Errorf("dripflow_run_batch_size = %v, want %d (the last planned size)", g, last)
	}
	evs, err := st.ListRunEvents(ctx, r.ID, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range evs {
		if e.Kind == store.EventNote && strings.Contains(e.Message, "adaptive batch size") {
			notes = append(notes, e.Message)
		}
	}
	// 50 → ≥100 → ≥200 → … → ~1,950: every doubling noted, no more.
	if len(notes) < 3 || len(notes) > 6 || !strings.Contains(notes[0], "grew from 50 to 100 keys") {
		t.Errorf("timeline notes %q; want one per doubling from 50 to ~1,950", notes)
	}

	// A restarted scheduler goes on from the last planned size, not 50.
	p2, _ := newTestPlanner(t, st, pipe)
	before := getRun(t, st, r.ID).BatchesTotal()
	run(p2, 1)
	if n := getBatch(t, st, r.ID, before+1).Size; n < last/2 || n > 2*last {
		t.Fatalf("after a restart the next batch has %d keys; want about %d, where the run was", n, last)
	}
	run(p2, 1000)
	if got := getRun(t, st, r.ID); got.State != store.RunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", got.State, got.Error)
	}
	var keys int
	for i, n := range sizesOf(t, st, r.ID) {
		if n < 10 || n > 20_000 {
			t.Errorf("batch %d planned with %d keys, outside 10..20,000", i+1, n)
		}
		keys += n
	}
	if keys < pipe.n {
		t.Errorf("the batches' sizes add up to %d, less than the %d keys planned", keys, pipe.n)
	}
	if g := gauge(t, metrics.RunBatchSize, "run", runLabel); g != -1 {
		t.Errorf("dripflow_run_batch_size of the ended run still exported (%v)", g)
	}
}

// From a batch size far too large, the first batch (alone in flight until
// it finished) that comes back over 2× the target shrinks the next ones at
// once (÷10 at most), and a run that does not adapt keeps its batch size
// whatever its batches take.
func TestPlannerShrinksSlowBatches(t *testing.T) {
	for _, tt := range []struct {
		name     string
		target   time.Duration
		wantNext int
	}{
		{"adaptive", 200 * time.Millisecond, 2000}, // ideal 2,000, bounded by ÷10
		{"not adaptive", 0, 20_000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := newTestStore(t)
			p, _ := newTestPlanner(t, st, &fakePipeline{n: 1_000_000})
			r := newTestRun(t, st, store.RunOptions{BatchSize: 20_000, MaxInFlight: 3, TargetBatchTime: tt.target})
			p.advance(ctx, r)
			completeTaking(t, st, r.ID, 1, 2*time.Second) // 100 µs a key: 10× the target
			p.advance(ctx, getRun(t, st, r.ID))
			sizes := sizesOf(t, st, r.ID)
			// An adaptive run has one batch in flight until the first
			// finished; the others fill the window at once.
			want := fmt.Sprint([]int{20_000, tt.wantNext, tt.wantNext, tt.wantNext})
			if tt.target == 0 {
				want = fmt.Sprint([]int{20_000, 20_000, 20_000, 20_000})
			}
			if fmt.Sprint(sizes) != want {
				t.Fatalf("planned sizes %v, want %s", sizes, want)
			}
		})
	}
}
