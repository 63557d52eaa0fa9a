package control

import (
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func TestProgressOf(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Second)
	tests := []struct {
		name                 string
		run                  store.Run
		percent, rate, eta   float64
		processed, succeeded int64
	}{
		{"not started, total unknown", store.Run{State: store.RunScheduled, Total: -1}, -1, 0, -1, 0, 0},
		{"half way", store.Run{State: store.RunRunning, Total: 1000, StartedAt: &start,
			Counters: store.Counters{RowsRead: 500, BatchesSucceeded: 5, BatchesPending: 5}}, 50, 50, 10, 500, 5},
		{"empty scope", store.Run{State: store.RunRunning, Total: 0, StartedAt: &start}, 100, 0, -1, 0, 0},
		{"succeeded beyond the estimate", store.Run{State: store.RunSucceeded, Total: 900, TotalEstimated: true, StartedAt: &start,
			FinishedAt: ptr(start.Add(5 * time.Second)), Counters: store.Counters{RowsRead: 1000, BatchesSucceeded: 10}}, 100, 200, 0, 1000, 10},
		// Only a running run has an ETA: a paused, cancelled or failed one
		// is not moving towards its end.
		{"paused half way", store.Run{State: store.RunPaused, Total: 1000, StartedAt: &start,
			Counters: store.Counters{RowsRead: 500, BatchesSucceeded: 5}}, 50, 50, -1, 500, 5},
		{"cancelled", store.Run{State: store.RunCancelled, Total: 1000, StartedAt: &start, FinishedAt: ptr(start.Add(5 * time.Second)),
			Counters: store.Counters{RowsRead: 500, BatchesSucceeded: 5}}, 50, 100, -1, 500, 5},
		{"failed", store.Run{State: store.RunFailed, Total: 1000, StartedAt: &start, FinishedAt: ptr(start.Add(5 * time.Second)),
			Counters: store.Counters{RowsRead: 900, BatchesSucceeded: 9, BatchesFailed: 1}}, 90, 180, -1, 900, 9},
		// A rows-per-second limit below the rate so far is the rate to come.
		{"throttled", store.Run{State: store.RunRunning, Total: 1000, StartedAt: &start, Options: store.RunOptions{RowsPerSecond: 25},
			Counters: store.Counters{RowsRead: 500, BatchesSucceeded: 5}}, 50, 50, 20, 500, 5},
	}
	for _, tt := range tests {
		p := ProgressOf(tt.run, now)
		if p.Percent != tt.percent || p.Rate != tt.rate || p.ETA != tt.eta || p.Processed != tt.processed || p.Batches[store.BatchSucceeded] != tt.succeeded {
			t.Errorf("%s: %+v; want percent %v rate %v eta %v processed %d", tt.name, p, tt.percent, tt.rate, tt.eta, tt.processed)
		}
	}
}

func ptr[T any](v T) *T { return &v }
