package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// An adaptive run on real processes (a scheduler and a worker on
// PostgreSQL and Redis) whose batches take 100 µs a key: from a batch size
// of 50, 40× too small for its 200 ms target, the sizes grow to where a
// batch takes about the target and stay there; after the warm-up no batch
// takes over twice the target; the scheduler, killed mid-run, comes back at
// the size it had reached; every item is processed exactly once; the size
// is exported while the run runs and dropped when it ends; the growth is on
// the run's timeline.
func TestProcessAdaptiveBatchSize(t *testing.T) {
	c := newCluster(t)
	const items, start, warmup = 80_000, 50, 15
	const target = 200 * time.Millisecond
	c.seedItems(items)
	sch := c.scheduler()
	c.worker(4)
	r := c.createRun(control.NewRun{Params: json.RawMessage(`{"sleep_us_per_key":100}`),
		BatchSize: ptr(start), MaxInFlight: ptr(4), TargetBatchTime: ptr(target)})
	if lo, hi := r.Options.BatchSizeBounds(); r.Options.MinBatchSize != lo || r.Options.MaxBatchSize != hi || hi != 5000 {
		t.Fatalf("run options %+v: want the default bounds kept (at most 5,000)", r.Options)
	}

	gauge := fmt.Sprintf(`dripflow_run_batch_size{definition="e2e_bump",run="%d"}`, r.ID)
	c.waitFor("the batch size to grow past 800", time.Minute, func() bool { return c.metrics(sch)[gauge] >= 800 })

	// Kill the scheduler mid-run: the next leader plans at the size the
	// run had reached, not from 50 again.
	sch.kill(t)
	killed := c.run(r.ID).BatchesTotal()
	reached, err := c.st.GetBatch(context.Background(), r.ID, killed)
	if err != nil {
		t.Fatal(err)
	}
	sch = c.scheduler()
	r = c.waitDone(r.ID, 3*time.Minute)

	var wrong int64
	if err := c.db.Model(&e2edefs.Item{}).Where("counter <> 1").Count(&wrong).Error; err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunSucceeded || r.RowsRead != items || wrong != 0 {
		t.Fatalf("run %s (%s) read %d rows; %d items not processed exactly once", r.State, r.Error, r.RowsRead, wrong)
	}
	var batches []store.Batch
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := c.st.ListBatches(context.Background(), r.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, page.Items...)
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	var rows int64
	var sizes []int
	for _, b := range batches {
		rows += b.RowsRead
		sizes = append(sizes, b.Size)
	}
	t.Logf("%d batches, planned sizes %v", len(batches), sizes)
	if rows != items || int64(len(batches)) != r.BatchesSucceeded {
		t.Fatalf("checkpoints: %d batches with %d rows; want every batch succeeded and %d rows", len(batches), rows, items)
	}
	if sizes[0] != start || len(batches) <= warmup+5 {
		t.Fatalf("first batch of %d keys, %d batches; want %d first and many more after a warm-up of %d", sizes[0], len(batches), start, warmup)
	}
	if next := batches[killed].Size; next < reached.Size/2 || next > 2*reached.Size {
		t.Errorf("after the restart the first batch was planned with %d keys; the run had reached %d", next, reached.Size)
	}

	// After the warm-up: no batch over 2× the target, the median near it,
	// the sizes where a batch takes about the target (at most 2,000 keys
	// at 100 µs each, less the batch's own cost).
	var durations []time.Duration
	var settled []int
	for _, b := range batches[warmup : len(batches)-1] { // the last batch holds what was left
		if b.Duration > 2*target {
			t.Errorf("batch %d (%d keys) took %s, over twice the %s target", b.Seq, b.Size, b.Duration, target)
		}
		durations = append(durations, b.Duration)
		settled = append(settled, b.Size)
	}
	slices.Sort(durations)
	slices.Sort(settled)
	med, medSize := durations[len(durations)/2], settled[len(settled)/2]
	t.Logf("after the warm-up: median batch %s of %d keys", med, medSize)
	if med < target/2 || med > target*5/4 {
		t.Errorf("median batch time after the warm-up %s, want about the %s target", med, target)
	}
	if medSize < 1000 || medSize > 2200 {
		t.Errorf("median batch size after the warm-up %d, want about 2,000 less the batch's own cost", medSize)
	}

	evs, err := c.st.ListRunEvents(context.Background(), r.ID, store.EventFilter{Limit: store.MaxEventLimit})
	if err != nil {
		t.Fatal(err)
	}
	var grew bool
	for _, e := range evs {
		grew = grew || (e.Kind == store.EventNote && strings.Contains(e.Message, "adaptive batch size grew from 50 to 100 keys"))
	}
	if !grew {
		t.Errorf("the run's timeline does not say the batch size grew from 50: %+v", evs)
	}
	if v, ok := c.metrics(sch)[gauge]; ok {
		t.Errorf("%s still exported (%v) after the run ended", gauge, v)
	}
}
