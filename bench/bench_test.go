package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
)

func TestMain(m *testing.M) {
	// Section 4 re-executes this binary as a worker or a scheduler.
	if IsProcess() {
		os.Exit(ProcessMain())
	}
	os.Exit(m.Run())
}

// Every section runs end to end at tiny sizes, so the benchmark cannot rot;
// the figures themselves are not checked (they mean nothing at this size).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	cfg := QuickConfig()
	cfg.PostgresURL = testenv.PostgresURL(t)
	cfg.RedisURL = testenv.RedisURL(t)
	cfg.Rows = 3000
	cfg.BatchSize = 500
	cfg.NoopBatches = 100
	cfg.NoopInFlight = 16
	cfg.Sizes = []int{1000, 3000}
	cfg.FirstBatchSamples = 2
	cfg.StoreOpsBatches = 40
	cfg.StoreOpsParallel = 4
	cfg.Timeout = 3 * time.Minute
	// Two rounds need more Redis databases in all than there are (15): each
	// must be given back when its variant ends.
	cfg.Repeat = 2
	cfg.Out = filepath.Join(t.TempDir(), "results.json")
	var progress strings.Builder
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if res.InPlace == nil || len(res.InPlace.Variants) != 9 || res.Noop == nil || res.Flow == nil ||
		res.FirstBatch == nil || len(res.FirstBatch.Sizes) != 2 || res.StoreOps == nil {
		t.Fatalf("a section is missing: %+v", res)
	}
	if len(res.Targets) != 12 {
		t.Errorf("%d targets evaluated, want 12: %+v", len(res.Targets), res.Targets)
	}
	if _, err := os.Stat(cfg.Out); err != nil {
		t.Errorf("results file: %v", err)
	}
	var table strings.Builder
	res.WriteTable(&table)
	for _, want := range []string{"### 1. In-place backfill", "### 2. No-op", "### 3. Flow", "### 4. Time to first batch", "### 5. Store operations", "### Targets"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags([]string{"--quick", "--rows", "1234", "--sizes", "1M,10k", "--only", "inplace,noop"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rows != 1234 || len(cfg.Sizes) != 2 || cfg.Sizes[0] != 1_000_000 || cfg.Sizes[1] != 10_000 ||
		cfg.NoopBatches != QuickConfig().NoopBatches || !cfg.runs(SectionNoop) || cfg.runs(SectionFlow) {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, bad := range [][]string{{"--only", "nope"}, {"--rows", "0"}, {"--sizes", "x"}, {"extra"}} {
		if _, err := ParseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("ParseFlags(%q) = nil error", bad)
		}
	}
}
