package scheduler

import (
	"testing"
	"time"
)

// ms is a duration in milliseconds.
func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// samples are batches of the given sizes that took perKey each key.
func samples(perKey time.Duration, sizes ...int) []batchSample {
	out := make([]batchSample, len(sizes))
	for i, n := range sizes {
		out[i] = batchSample{Size: n, Duration: time.Duration(n) * perKey}
	}
	return out
}

func TestNextBatchSize(t *testing.T) {
	s := sizing{target: ms(200), min: 10, max: 100_000}
	tests := []struct {
		name   string
		s      sizing
		cur    int
		window []batchSample
		fresh  int
		want   int
	}{
		{"no samples: stay", s, 1000, nil, 0, 1000},
		{"samples without a size or a duration: stay", s, 1000, []batchSample{{Size: 0, Duration: ms(900)}, {Size: 500}}, 2, 1000},
		{"far too fast: at most ×2", s, 1000, samples(10*time.Microsecond, 1000), 1, 2000},
		{"a little too fast: to the ideal", s, 1000, samples(ms(0.17), 1000), 1, 1200},             // ideal 1,176
		{"on target: stay", s, 1000, samples(ms(0.2), 1000, 1000), 1, 1000},                        // 200 ms a batch
		{"within the dead band: stay", s, 1000, samples(ms(0.19), 1000), 1, 1000},                  // ideal 1,053
		{"too slow, under 2× the target: at most ÷2", s, 1000, samples(ms(0.38), 1000), 1, 530},    // 380 ms: ideal 526
		{"far too slow but old news: at most ÷2", s, 1000, samples(ms(1), 1000, 1000), 0, 500},     // no fresh batch
		{"over 2× the target: straight to the ideal", s, 4000, samples(ms(0.5), 4000), 1, 400},     // 2 s: ideal 400
		{"over 2× the target: at most ÷10", s, 4000, samples(ms(10), 4000), 1, 400},                // 40 s: ideal 20
		{"the estimate is absolute: no compounding", s, 400, samples(ms(0.5), 4000, 4000), 2, 400}, // planned ahead at 4,000
		{"median: one slow batch does not move it", s, 2000, []batchSample{
			{2000, ms(100)}, {2000, ms(100)}, {2000, ms(380)}, {2000, ms(100)}, {2000, ms(100)},
		}, 1, 4000},
		{"a fresh batch over 2× the target outweighs the median", s, 2000, []batchSample{
			{2000, ms(100)}, {2000, ms(100)}, {2000, ms(100)}, {2000, ms(100)}, {2000, ms(1000)},
		}, 1, 400},
		{"only the newest five count", s, 1000, append(samples(ms(10), 1000, 1000, 1000), samples(ms(0.1), 1000, 1000, 1000, 1000, 1000)...), 1, 2000},
		{"never above max", sizing{target: ms(200), min: 10, max: 1500}, 1000, samples(time.Microsecond, 1000), 1, 1500},
		{"never below min", sizing{target: ms(200), min: 300, max: 5000}, 1000, samples(ms(5), 1000), 1, 300},
		{"a current size out of bounds is brought in", sizing{target: ms(200), min: 10, max: 800}, 5000, nil, 0, 800},
		{"rounded to two significant digits", s, 40_000, samples(ms(0.0045), 40_000), 1, 44_000}, // ideal 44,444
		{"never below 1", sizing{target: ms(10), min: 1, max: 10}, 2, samples(ms(100), 2), 1, 1},
		{"small sizes keep their digits", sizing{target: ms(100), min: 1, max: 1000}, 50, samples(ms(1.3), 50), 1, 77}, // ideal 76.9
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextBatchSize(tt.s, tt.cur, tt.window, tt.fresh); got != tt.want {
				t.Errorf("nextBatchSize(cur %d) = %d, want %d", tt.cur, got, tt.want)
			}
		})
	}
}

// Driven by batches whose time is a fixed cost plus a cost per key, the
// controller converges from far below and far above to the size that takes
// the target, never passes max, and then holds still.
func TestNextBatchSizeConverges(t *testing.T) {
	s := sizing{target: ms(200), min: 10, max: 100_000}
	const fixed, perKey = 20 * time.Millisecond, 90 * time.Microsecond // ideal: 2,000
	for _, start := range []int{10, 1000, 50_000} {
		cur := start
		var window []batchSample
		var sizes []int
		for range 30 {
			window = append(window, batchSample{Size: cur, Duration: fixed + time.Duration(cur)*perKey})
			cur = nextBatchSize(s, cur, window, 1)
			sizes = append(sizes, cur)
		}
		last := sizes[len(sizes)-10:]
		for _, n := range last {
			if n < 1800 || n > 2200 || n != last[0] {
				t.Errorf("from %d: sizes %v; want them to settle on one size near 2,000", start, sizes)
				break
			}
		}
		for i := 1; i < len(sizes); i++ {
			if sizes[i] > 2*sizes[i-1] {
				t.Errorf("from %d: size grew more than ×2 in one step: %v", start, sizes)
			}
		}
	}
}
