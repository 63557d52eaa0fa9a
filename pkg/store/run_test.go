package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestNewRunValidate(t *testing.T) {
	good := NewRun{Definition: "d", Kind: KindBackfill, Options: RunOptions{BatchSize: 1000, MaxAttempts: 3, MaxInFlight: 4}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid run refused: %v", err)
	}
	tests := []struct {
		field  string
		mutate func(*NewRun)
	}{
		{"definition", func(n *NewRun) { n.Definition = "" }},
		{"definition", func(n *NewRun) { n.Definition = string(make([]byte, 201)) }},
		{"kind", func(n *NewRun) { n.Kind = "" }},
		{"created_by", func(n *NewRun) { n.CreatedBy = string(make([]byte, 201)) }},
		{"params", func(n *NewRun) { n.Params = json.RawMessage(`"str"`) }},
		{"params", func(n *NewRun) { n.Params = json.RawMessage(`null`) }},
		{"params", func(n *NewRun) { n.Params = json.RawMessage(`{`) }},
		{"batch_size", func(n *NewRun) { n.Options.BatchSize = -3 }},
		{"max_attempts", func(n *NewRun) { n.Options.MaxAttempts = MaxMaxAttempts + 1 }},
		{"max_in_flight", func(n *NewRun) { n.Options.MaxInFlight = 0 }},
		{"sleep", func(n *NewRun) { n.Options.Sleep = -time.Nanosecond }},
		{"rows_per_second", func(n *NewRun) { n.Options.RowsPerSecond = -1 }},
		{"batch_timeout", func(n *NewRun) { n.Options.BatchTimeout = -1 }},
		{"error_budget", func(n *NewRun) { n.Options.ErrorBudget = -1 }},
	}
	for _, tt := range tests {
		n := good
		tt.mutate(&n)
		err := n.Validate()
		var ae *ArgumentError
		if !errors.As(err, &ae) || ae.Field != tt.field {
			t.Errorf("bad %s: got %v, want an ArgumentError for %s", tt.field, err, tt.field)
		}
	}
}

func TestCounters(t *testing.T) {
	c := Counters{BatchesPending: 1, BatchesEnqueued: 2, BatchesRunning: 3, BatchesSucceeded: 4, BatchesFailed: 5, BatchesCancelled: 6}
	var sum int64
	for i, s := range BatchStates {
		if got := c.Batches(s); got != int64(i+1) {
			t.Errorf("Batches(%s) = %d, want %d", s, got, i+1)
		}
		sum += c.Batches(s)
	}
	if c.BatchesTotal() != sum || c.InFlight() != 6 {
		t.Errorf("BatchesTotal %d InFlight %d, want %d and 6", c.BatchesTotal(), c.InFlight(), sum)
	}
}

func TestAdaptiveOptions(t *testing.T) {
	base := RunOptions{BatchSize: 1000, MaxAttempts: 3, MaxInFlight: 4}
	tests := []struct {
		name      string
		o         func(o RunOptions) RunOptions
		field     string // "" when valid
		lo, hi    int    // BatchSizeBounds of a valid one
		adaptive  bool
		filledMin int // WithBatchSizeBounds
	}{
		{"off", func(o RunOptions) RunOptions { return o }, "", 1000, 1000, false, 0},
		{"bounds without a target are kept but unused", func(o RunOptions) RunOptions { o.MinBatchSize, o.MaxBatchSize = 5, 50; return o }, "", 1000, 1000, false, 5},
		{"defaults: 1/100 and 100x the batch size", func(o RunOptions) RunOptions { o.TargetBatchTime = time.Second; return o }, "", 10, 100_000, true, 10},
		{"default max capped at MaxBatchSize", func(o RunOptions) RunOptions {
			o.TargetBatchTime, o.BatchSize = time.Second, 500_000
			return o
		}, "", 5000, MaxBatchSize, true, 5000},
		{"default min at least 1", func(o RunOptions) RunOptions { o.TargetBatchTime, o.BatchSize = time.Second, 50; return o }, "", 1, 5000, true, 1},
		{"explicit bounds", func(o RunOptions) RunOptions {
			o.TargetBatchTime, o.MinBatchSize, o.MaxBatchSize = 10*time.Millisecond, 1, 1000
			return o
		}, "", 1, 1000, true, 1},
		{"target too short", func(o RunOptions) RunOptions { o.TargetBatchTime = 9 * time.Millisecond; return o }, "target_batch_time", 0, 0, false, 0},
		{"target too long", func(o RunOptions) RunOptions { o.TargetBatchTime = 11 * time.Minute; return o }, "target_batch_time", 0, 0, false, 0},
		{"min above batch size", func(o RunOptions) RunOptions { o.TargetBatchTime, o.MinBatchSize = time.Second, 1001; return o }, "min_batch_size", 0, 0, false, 0},
		{"max below batch size", func(o RunOptions) RunOptions { o.TargetBatchTime, o.MaxBatchSize = time.Second, 999; return o }, "max_batch_size", 0, 0, false, 0},
		{"max above the limit", func(o RunOptions) RunOptions { o.MaxBatchSize = MaxBatchSize + 1; return o }, "max_batch_size", 0, 0, false, 0},
		{"min above max", func(o RunOptions) RunOptions { o.MinBatchSize, o.MaxBatchSize = 10, 9; return o }, "min_batch_size", 0, 0, false, 0},
		{"negative min", func(o RunOptions) RunOptions { o.MinBatchSize = -1; return o }, "min_batch_size", 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o(base)
			err := o.Validate()
			if tt.field != "" {
				var ae *ArgumentError
				if !errors.As(err, &ae) || ae.Field != tt.field {
					t.Fatalf("Validate: %v, want an ArgumentError for %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if o.Adaptive() != tt.adaptive {
				t.Errorf("Adaptive() = %v, want %v", o.Adaptive(), tt.adaptive)
			}
			if lo, hi := o.BatchSizeBounds(); lo != tt.lo || hi != tt.hi {
				t.Errorf("BatchSizeBounds() = %d, %d; want %d, %d", lo, hi, tt.lo, tt.hi)
			}
			filled := o.WithBatchSizeBounds()
			if filled.MinBatchSize != tt.filledMin {
				t.Errorf("WithBatchSizeBounds: min %d, want %d", filled.MinBatchSize, tt.filledMin)
			}
			if err := filled.Validate(); err != nil {
				t.Errorf("WithBatchSizeBounds made invalid options: %v", err)
			}
		})
	}
}
