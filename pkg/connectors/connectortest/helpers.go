package connectortest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Build builds a source configuration with res, failing the test on error.
func Build(t *testing.T, res *engine.Resources, cfg flows.SourceConfig) flows.Source {
	t.Helper()
	src, err := cfg.Build(context.Background(), res)
	if err != nil {
		t.Fatalf("build %+v: %v", cfg, err)
	}
	return src
}

// ReadAll plans src from lo and reads every range twice (a retried batch
// must read the same records); it returns the records and the ranges. A
// range that is not the last must hold size records; when posField is not
// empty, a range's last record must carry its hi in that field.
func ReadAll(t *testing.T, src flows.Source, lo string, size int, posField string) ([]flows.Record, [][2]string) {
	t.Helper()
	ctx := context.Background()
	var out []flows.Record
	var ranges [][2]string
	for {
		split, err := src.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
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
		if posField != "" && (len(recs) == 0 || fmt.Sprint(recs[len(recs)-1][posField]) != split.Hi) {
			t.Errorf("range (%q, %q] does not end at its hi: %v", lo, split.Hi, recs)
		}
		out = append(out, recs...)
		ranges = append(ranges, [2]string{lo, split.Hi})
		if len(ranges) > 1000 {
			t.Fatal("Next never reaches the end")
		}
		lo = split.Hi
	}
}
