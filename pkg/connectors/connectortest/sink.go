package connectortest

import (
	"context"
	"fmt"
	"testing"

	"github.com/dripflow/dripflow/pkg/flows"
)

// IdempotentSink is what an idempotent sink gives the suite.
type IdempotentSink struct {
	// Open returns a sink writing somewhere of its own, empty, built with
	// idField as its message id field ("" for none), and a function that
	// counts what it holds.
	Open func(t *testing.T, idField string) (flows.Sink, func(t *testing.T) int)
}

// RunIdempotentSink checks a sink that promises flows.Idempotent: a batch
// written again (a redelivery) adds nothing; without an id field a
// redelivery of the same batch still adds nothing while another batch with
// the same records does add them; with an id field, records with known ids
// add nothing whichever batch carries them.
func RunIdempotentSink(t *testing.T, h IdempotentSink) {
	t.Helper()
	ctx := context.Background()
	records := func(from, to int) []flows.Record {
		var out []flows.Record
		for i := from; i < to; i++ {
			out = append(out, flows.Record{"order": fmt.Sprintf("o-%d", i), "total": int64(i)})
		}
		return out
	}
	write := func(t *testing.T, s flows.Sink, b *flows.Batch) {
		t.Helper()
		if _, err := s.Write(ctx, b); err != nil {
			t.Fatalf("Write batch %s: %v", b.ID(), err)
		}
	}
	t.Run("redelivery by place in the batch", func(t *testing.T) {
		s, count := h.Open(t, "")
		if s.Guarantee() != flows.Idempotent {
			t.Fatalf("guarantee %q, want idempotent", s.Guarantee())
		}
		b := &flows.Batch{Flow: "conformance", Run: 1, Seq: 1, Records: records(0, 700)}
		write(t, s, b)
		write(t, s, b)
		if n := count(t); n != 700 {
			t.Errorf("after a redelivered batch of 700: %d, want 700", n)
		}
		write(t, s, &flows.Batch{Flow: "conformance", Run: 1, Seq: 2, Records: records(0, 10)})
		if n := count(t); n != 710 {
			t.Errorf("after another batch of 10: %d, want 710", n)
		}
	})
	t.Run("by id field across batches", func(t *testing.T) {
		s, count := h.Open(t, "order")
		for seq := range 3 {
			write(t, s, &flows.Batch{Flow: "conformance", Run: 2, Seq: int64(seq), Records: records(0, 50+10*seq)})
		}
		if n := count(t); n != 70 {
			t.Errorf("three batches of orders 0..49, 0..59, 0..69: %d, want 70", n)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		s, count := h.Open(t, "")
		if n, err := s.Write(ctx, &flows.Batch{Flow: "conformance", Run: 3, Seq: 1}); n != 0 || err != nil {
			t.Errorf("Write of no records = %d, %v; want 0, nil", n, err)
		}
		if n := count(t); n != 0 {
			t.Errorf("after an empty batch: %d, want 0", n)
		}
	})
}
