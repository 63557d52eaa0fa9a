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
