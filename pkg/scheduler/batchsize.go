package scheduler

import (
	"math"
	"slices"
	"time"
)

// The adaptive batch size's controller (RunOptions.TargetBatchTime): from
// how long a run's recent batches took for the keys they were planned with,
// the size its next batches should have to take about the target. A pure
// function; adaptive.go feeds it from the store and keeps its answer.
//
// It estimates the time per key as the median over the newest sizeWindow
// succeeded batches (one slow or fast batch does not move it), and aims at
// target / that. The estimate is absolute, not a correction of the current
// size, so asking again about the same batches gives the same answer: the
// planner, which plans up to max_in_flight batches ahead, can ask at every
// finished batch without compounding one observation. A batch's fixed cost
// (claim, checkpoint, a round trip) makes small batches look slower per key,
// so from far below the ideal the size approaches it from below instead of
// overshooting. Each decision moves at most ×sizeGrowth up and
// ÷sizeShrink down, so a noisy estimate cannot swing it; but a batch that
// took over sizeSlow times the target is acted on at once, down to
// ÷sizeFastShrink. Changes under sizeDeadBand are not made, and sizes are
// rounded to two significant digits, so the size holds still once it is
// near and reads well ("now 4,300 per batch").

// batchSample is what one succeeded batch says about its run's speed.
// Rows read are not used: what a job reports as read (an UPDATE's changed
// rows, say) need not be the keys it went through, and the time goes on
// the keys the batch was planned with.
type batchSample struct {
	Size     int           // keys the batch was planned with
	Duration time.Duration // how long its successful attempt took
}

// sizing is an adaptive run's target and bounds.
type sizing struct {
	target   time.Duration
	min, max int
}

// Tuning of nextBatchSize.
const (
	sizeWindow     = 5   // newest batches the estimate is the median of
	sizeGrowth     = 2   // at most ×2 per decision
	sizeShrink     = 2   // at most ÷2 per decision, …
	sizeSlow       = 2   // … unless a fresh batch took over 2× the target:
	sizeFastShrink = 10  // then at most ÷10
	sizeDeadBand   = 0.1 // changes under 10 % are not made
)

// nextBatchSize returns the size to plan the run's next batches with, now
// planned with cur. window holds the newest samples, oldest first (at most
// sizeWindow are read); the last fresh of them arrived since the previous
// decision. With no usable sample the answer is cur (within the bounds).
func nextBatchSize(s sizing, cur int, window []batchSample, fresh int) int {
	cur = min(max(cur, s.min, 1), s.max)
	if len(window) > sizeWindow {
		fresh = min(fresh, sizeWindow)
		window = window[len(window)-sizeWindow:]
	}
	fresh = min(max(fresh, 0), len(window))
	costs := make([]float64, 0, len(window)) // nanoseconds per key
	for _, b := range window {
		if b.Size > 0 && b.Duration > 0 {
			costs = append(costs, float64(b.Duration)/float64(b.Size))
		}
	}
	if len(costs) == 0 {
		return cur
	}
	cost := median(costs)
	lower := float64(cur) / sizeShrink
	for _, b := range window[len(window)-fresh:] {
		if b.Size > 0 && b.Duration > sizeSlow*s.target {
			// Too slow to wait for the median: plan for this batch's
			// speed, however far down that is (within ÷sizeFastShrink).
			cost = max(cost, float64(b.Duration)/float64(b.Size))
			lower = float64(cur) / sizeFastShrink
		}
	}
	ideal := float64(s.target) / cost
	next := min(max(ideal, lower), float64(cur)*sizeGrowth)
	if math.Abs(next-float64(cur)) < sizeDeadBand*float64(cur) {
		return cur
	}
	return min(max(roundSize(next), s.min, 1), s.max)
}

// median returns the median of xs (not empty); it reorders xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// roundSize rounds a size to two significant digits (4,321 → 4,300; 87 →
// 87), at least 1.
func roundSize(x float64) int {
	if x < 1 {
		return 1
	}
	unit := 1.0
	for x/unit >= 100 {
		unit *= 10
	}
	return int(math.Round(x/unit) * unit)
}
