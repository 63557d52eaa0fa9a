package connectortest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/flows"
)

// Offset is what an offset source gives the suite.
type Offset struct {
	// Open returns a source over a log of its own (a stream, a subject, a
	// queue) that is empty, and a function that appends n records whose
	// number is from, from+1, … and returns their positions.
	Open func(t *testing.T) (flows.Source, func(t *testing.T, from, n int) []string)
	// Number returns the number a record was appended with.
	Number func(t *testing.T, r flows.Record) int
	// Position returns the position of a record read.
	Position func(r flows.Record) string
}

// RunOffset checks an offset source: the shape, planning ranges of at most
// a batch size up to the end of the log, Read returning the same records
// for a range every time, starting after a watermark, and the end of the
// log moving as records arrive.
func RunOffset(t *testing.T, h Offset) {
	t.Helper()
	ctx := context.Background()
	src, add := h.Open(t)
	if src.Shape() != flows.Offset || !src.Resumes() {
		t.Errorf("shape %q, resumes %v; want an offset source that resumes", src.Shape(), src.Resumes())
	}
	if split, err := src.Next(ctx, "", 10); err != nil || split.Hi != "" {
		t.Errorf("Next on an empty log = %+v, %v; want nothing", split, err)
	}
	pos := add(t, 0, 23)
	if len(pos) != 23 {
		t.Fatalf("append returned %d positions, want 23", len(pos))
	}
	numbers := func(from, to int) []int {
		var out []int
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, size := range []int{1, 4, 23, 100} {
		got, ranges := readAll(t, h, src, "", size)
		if diff := cmp.Diff(numbers(0, 23), got); diff != "" {
			t.Errorf("size %d: numbers read (-want +got):\n%s", size, diff)
		}
		if n := (23 + size - 1) / size; ranges != n {
			t.Errorf("size %d: %d ranges, want %d", size, ranges, n)
		}
	}
	got, _ := readAll(t, h, src, pos[9], 5)
	if diff := cmp.Diff(numbers(10, 23), got); diff != "" {
		t.Errorf("after the watermark %s: numbers read (-want +got):\n%s", pos[9], diff)
	}
	if split, err := src.Next(ctx, pos[22], 10); err != nil || split.Hi != "" {
		t.Errorf("Next at the end = %+v, %v; want nothing", split, err)
	}
	more := add(t, 23, 3)
	split, err := src.Next(ctx, pos[22], 10)
	if err != nil || split != (flows.Split{Hi: more[2], Last: true}) {
		t.Errorf("Next after 3 new records = %+v, %v; want hi %s, last", split, err, more[2])
	}
	got, _ = readAll(t, h, src, pos[22], 2)
	if diff := cmp.Diff(numbers(23, 26), got); diff != "" {
		t.Errorf("the new records (-want +got):\n%s", diff)
	}
}

// readAll plans src from lo with Next and reads each range twice; it
// returns the numbers read and how many ranges there were.
func readAll(t *testing.T, h Offset, src flows.Source, lo string, size int) ([]int, int) {
	t.Helper()
	ctx := context.Background()
	var out []int
	ranges := 0
	for {
		split, err := src.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q, %d): %v", lo, size, err)
		}
		if split.Hi == "" {
			return out, ranges
		}
		recs, err := src.Read(ctx, lo, split.Hi)
		if err != nil {
			t.Fatalf("Read(%q, %q]: %v", lo, split.Hi, err)
		}
		again, err := src.Read(ctx, lo, split.Hi)
		if err != nil || !cmp.Equal(recs, again) {
			t.Errorf("Read(%q, %q] twice differs (%v):\n%s", lo, split.Hi, err, cmp.Diff(recs, again))
		}
		if !split.Last && len(recs) != size {
			t.Errorf("range (%q, %q] is not the last but has %d records, want %d", lo, split.Hi, len(recs), size)
		}
		if len(recs) == 0 || h.Position(recs[len(recs)-1]) != split.Hi {
			t.Errorf("range (%q, %q] does not end at its hi: %v", lo, split.Hi, recs)
		}
		for _, r := range recs {
			out = append(out, h.Number(t, r))
		}
		ranges++
		if ranges > 1000 {
			t.Fatal("Next never reaches the end")
		}
		lo = split.Hi
	}
}
