package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// Section 6 (adaptive): the adaptive batch size against a hand-written
// loop tuned by hand. The loop runs at every size of AdaptiveLoopSizes
// and keeps its best; dripflow (set-based backfill, SQL store, scheduler
// and worker as processes, as the headline variants of section 1) starts
// at batch size AdaptiveStart with target_batch_ms Config.AdaptiveTarget
// and has to find a good size by itself. The goal: within 1.1× the loop
// at its best size, and no batch over twice the target.

// AdaptiveLoopSizes are the batch sizes the hand-written loop is timed at.
var AdaptiveLoopSizes = []int{500, 1000, 2000, 5000, 10000, 20000}

// AdaptiveStart is the batch size the adaptive run starts from.
const AdaptiveStart = 1000

// VariantAdaptive is the adaptive dripflow variant's name.
const VariantAdaptive = "dripflow-sql-adaptive"

// AdaptiveResult is section 6.
type AdaptiveResult struct {
	Rows        int `json:"rows"`
	Concurrency int `json:"concurrency"`
	// Loop is the hand-written loop at each size; BestLoop the fastest.
	Loop     []AdaptiveLoop `json:"loop"`
	BestLoop AdaptiveLoop   `json:"best_loop"`
	// Target is the run's target_batch_ms; StartBatchSize its batch_size.
	Target         Seconds `json:"target_s"`
	StartBatchSize int     `json:"start_batch_size"`
	// Dripflow is the adaptive run (its fastest round).
	Dripflow AdaptiveRun `json:"dripflow"`
}

// AdaptiveLoop is the hand-written loop at one batch size.
type AdaptiveLoop struct {
	BatchSize int       `json:"batch_size"`
	Wall      Seconds   `json:"wall_s"`
	Rounds    []Seconds `json:"rounds_s"`
}

// AdaptiveRun is one adaptive dripflow run.
type AdaptiveRun struct {
	Description string  `json:"description"`
	Wall        Seconds `json:"wall_s"`
	// VsBestLoop is Wall divided by the loop's at its best size.
	VsBestLoop float64 `json:"vs_best_loop"`
	Batches    int64   `json:"batches"`
	// FinalBatchSize is the size of the last batch planned at a full
	// size (the last one holds what was left); MedianBatchSize the median
	// planned size; MaxBatch the longest batch and MaxVsTarget it divided
	// by the target.
	FinalBatchSize  int       `json:"final_batch_size"`
	MedianBatchSize int       `json:"median_batch_size"`
	MaxBatch        Seconds   `json:"max_batch_s"`
	MaxVsTarget     float64   `json:"max_vs_target"`
	Pipeline        *Pipeline `json:"pipeline,omitempty"`
	Rounds          []Seconds `json:"rounds_s"`
}

func (r *runner) adaptive(ctx context.Context) (*AdaptiveResult, error) {
	rows, target := r.cfg.Rows, r.cfg.AdaptiveTarget
	conns := max(2, r.cfg.Concurrency)
	r.logf("section 6: adaptive batch size, %d rows: hand-written loop on %d connections at batch sizes %v; dripflow from batch size %d with target_batch_ms %d",
		rows, conns, AdaptiveLoopSizes, AdaptiveStart, target.Milliseconds())
	tpl, err := r.template(ctx, rows)
	if err != nil {
		return nil, err
	}
	res := &AdaptiveResult{Rows: rows, Concurrency: r.cfg.Concurrency, Target: Seconds(target), StartBatchSize: AdaptiveStart,
		Loop: make([]AdaptiveLoop, len(AdaptiveLoopSizes))}
	res.Dripflow.Description = fmt.Sprintf("dripflow, set-based backfill (ProcessRange), SQL store in the same database, scheduler and worker as processes, worker concurrency %d, max_in_flight %d, batch_size %d, target_batch_ms %d",
		r.cfg.Concurrency, r.cfg.MaxInFlight, AdaptiveStart, target.Milliseconds())
	// Rounds interleave, as in section 1; each keeps its fastest.
	for round := 0; round < r.cfg.Repeat; round++ {
		for i, size := range AdaptiveLoopSizes {
			l := &res.Loop[i]
			l.BatchSize = size
			wall, err := r.onCopy(ctx, tpl, rows, func(url string) (Seconds, error) {
				start := time.Now()
				err := handLoop(ctx, url, conns, size)
				return Seconds(time.Since(start)), err
			})
			if err != nil {
				return nil, fmt.Errorf("loop at batch size %d: %w", size, err)
			}
			l.Rounds = append(l.Rounds, wall)
			if l.Wall == 0 || wall < l.Wall {
				l.Wall = wall
			}
			r.logf("  loop %6d   %8.2fs  %9.0f rows/s", size, wall.Seconds(), float64(rows)/wall.Seconds())
		}
		var got AdaptiveRun
		_, err := r.onCopy(ctx, tpl, rows, func(url string) (Seconds, error) {
			var err error
			got, err = r.adaptiveRun(ctx, url, target)
			return got.Wall, err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", VariantAdaptive, err)
		}
		got.Description = res.Dripflow.Description
		got.Rounds = append(res.Dripflow.Rounds, got.Wall)
		r.logf("  %s %8.2fs  %9.0f rows/s  %d batches, final size %d, median %d, longest %.0f ms (%.2f× the target)",
			VariantAdaptive, got.Wall.Seconds(), float64(rows)/got.Wall.Seconds(), got.Batches, got.FinalBatchSize, got.MedianBatchSize,
			got.MaxBatch.Seconds()*1000, got.MaxVsTarget)
		if round == 0 || got.Wall < res.Dripflow.Wall {
			res.Dripflow = got
		} else {
			res.Dripflow.Rounds = got.Rounds
		}
	}
	res.BestLoop = slices.MinFunc(res.Loop, func(a, b AdaptiveLoop) int { return cmp.Compare(a.Wall, b.Wall) })
	res.Dripflow.VsBestLoop = float64(res.Dripflow.Wall) / float64(res.BestLoop.Wall)
	r.logf("  best loop: batch size %d, %.2fs; %s at %.2f× it", res.BestLoop.BatchSize, res.BestLoop.Wall.Seconds(), VariantAdaptive, res.Dripflow.VsBestLoop)
	return res, nil
}

// onCopy runs f on a fresh copy of the template and checks that every row
// was bumped exactly once.
func (r *runner) onCopy(ctx context.Context, tpl string, rows int, f func(url string) (Seconds, error)) (Seconds, error) {
	url, drop, err := r.copyOf(ctx, tpl)
	if err != nil {
		return 0, err
	}
	defer drop()
	wall, err := f(url)
	if err == nil {
		err = verifyBumped(ctx, url, int64(rows))
	}
	return wall, err
}

// adaptiveRun runs bench_bump with the adaptive batch size through a
// scheduler and a worker as processes, on the SQL store in the database at
// url, and reads what its batches did.
func (r *runner) adaptiveRun(ctx context.Context, url string, target time.Duration) (AdaptiveRun, error) {
	de, err := r.dripflowEnv(ctx, url, false)
	if err != nil {
		return AdaptiveRun{}, err
	}
	defer de.close()
	start := AdaptiveStart
	rr, pl, err := r.runDripflow(ctx, de, ShapeProcesses, r.cfg.Concurrency, control.NewRun{
		Definition: defBump, CreatedBy: "bench",
		BatchSize: &start, MaxInFlight: &r.cfg.MaxInFlight, TargetBatchTime: &target,
	})
	if err != nil {
		return AdaptiveRun{}, err
	}
	bs, err := allBatches(ctx, de.st, rr.Run.ID)
	if err != nil {
		return AdaptiveRun{}, err
	}
	out := AdaptiveRun{Wall: Seconds(rr.Wall), Batches: rr.Run.BatchesSucceeded, Pipeline: &pl}
	out.FinalBatchSize, out.MedianBatchSize, out.MaxBatch = adaptiveSizes(bs)
	out.MaxVsTarget = float64(out.MaxBatch) / float64(target)
	return out, nil
}

// adaptiveSizes reads a run's batches: the last full batch's planned size,
// the median planned size, and the longest batch.
func adaptiveSizes(bs []store.Batch) (final, median int, longest Seconds) {
	if len(bs) == 0 {
		return 0, 0, 0
	}
	sizes := make([]int, 0, len(bs))
	for _, b := range bs {
		sizes = append(sizes, b.Size)
		longest = max(longest, Seconds(b.Duration))
	}
	final = sizes[len(sizes)-1]
	if len(sizes) > 1 {
		final = sizes[len(sizes)-2] // the last batch holds what was left
	}
	slices.Sort(sizes)
	return final, sizes[len(sizes)/2], longest
}

// loopLine is the loop's times by batch size, for the report.
func (a *AdaptiveResult) loopLine() string {
	parts := make([]string, len(a.Loop))
	for i, l := range a.Loop {
		parts[i] = fmt.Sprintf("%s: %.2f s", count(l.BatchSize), l.Wall.Seconds())
	}
	return strings.Join(parts, ", ")
}
