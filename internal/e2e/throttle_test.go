package e2e

import (
	"sort"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// rows_per_second holds with separate scheduler and worker processes: over
// any 10 s of the run the rows its batches started stay within 3 % of the
// limit, and no 2 s stretch bursts past it by more than a batch or so.
func TestProcessThrottleHoldsRowsPerSecond(t *testing.T) {
	c := newCluster(t)
	const items, size, rps = 45_000, 200, 3_000
	c.seedItems(items)
	c.scheduler()
	c.worker(4)
	c.worker(4)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(8), RowsPerSecond: ptr(rps)})
	r = c.waitDone(r.ID, 2*time.Minute)
	if r.State != store.RunSucceeded || r.RowsRead != items {
		t.Fatalf("run %d: %s with %d rows (%s)", r.ID, r.State, r.RowsRead, r.Error)
	}
	type start struct {
		at   time.Time
		rows int64
	}
	var starts []start
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := c.st.ListBatches(t.Context(), r.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Items {
			if b.StartedAt == nil || b.Attempts != 1 {
				t.Fatalf("batch %d: started %v after %d attempts", b.Seq, b.StartedAt, b.Attempts)
			}
			starts = append(starts, start{*b.StartedAt, b.RowsRead})
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].at.Before(starts[j].at) })
	first, last := starts[0].at, starts[len(starts)-1].at
	gap := time.Second * size / rps
	span := last.Sub(first) + gap // the last batch's share of time
	overall := float64(items) / span.Seconds()
	t.Logf("%d batches started over %s: %.0f rows/s against a limit of %d", len(starts), span.Round(time.Millisecond), overall, rps)
	if overall < rps*0.97 || overall > rps*1.03 {
		t.Errorf("the run started %.0f rows/s on average, want %d ± 3 %%", overall, rps)
	}
	rowsIn := func(from, to time.Time) int64 {
		var n int64
		for _, s := range starts {
			if !s.at.Before(from) && s.at.Before(to) {
				n += s.rows
			}
		}
		return n
	}
	for _, w := range []struct {
		length time.Duration
		slack  float64 // allowed deviation, as a share of the window's rows
	}{{10 * time.Second, 0.03}, {2 * time.Second, 0.12}} {
		want := float64(rps) * w.length.Seconds()
		worst := 0.0
		for from := first; !from.Add(w.length).After(last); from = from.Add(250 * time.Millisecond) {
			got := float64(rowsIn(from, from.Add(w.length)))
			if dev := (got - want) / want; dev > w.slack || dev < -w.slack {
				t.Errorf("%s from %s: %.0f rows started, want %.0f ± %.0f %%", w.length, from.Sub(first).Round(time.Millisecond), got, want, w.slack*100)
				break
			} else if dev > worst || -dev > worst {
				worst = max(dev, -dev)
			}
		}
		t.Logf("windows of %s: worst deviation %.1f %%", w.length, worst*100)
	}
}
