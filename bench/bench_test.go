package bench

import (
	"context"
	"fmt"
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
	cfg.ScaleProcs = []int{1, 2}
	cfg.ScaleConcurrency = []int{2}
	cfg.ScaleNoopBatches = 100
	cfg.ScaleRows = 3000
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
	if res.InPlace == nil || len(res.InPlace.Variants) != 11 || res.Noop == nil || res.Flow == nil ||
		res.FirstBatch == nil || len(res.FirstBatch.Sizes) != 2 || res.StoreOps == nil || res.Adaptive == nil || len(res.Adaptive.Loop) != len(AdaptiveLoopSizes) || res.Scale == nil {
		t.Fatalf("a section is missing: %+v", res)
	}
	if len(res.Targets) != 20 {
		t.Errorf("%d targets evaluated, want 20: %+v", len(res.Targets), res.Targets)
	}
	if a := res.Adaptive; a.Dripflow.Batches == 0 || a.Dripflow.MedianBatchSize == 0 || a.Dripflow.MaxVsTarget <= 0 || a.Dripflow.VsBestLoop <= 0 || a.BestLoop.Wall <= 0 {
		t.Errorf("adaptive section incomplete: %+v", a)
	}
	if _, err := os.Stat(cfg.Out); err != nil {
		t.Errorf("results file: %v", err)
	}
	if sc := res.Scale; sc != nil {
		// 1 and 2 workers × in-place and no-op × the Redis and SQL stores.
		if len(sc.Points) != 8 {
			t.Errorf("scale: %d points, want 8: %+v", len(sc.Points), sc.Points)
		}
		for _, pt := range sc.Points {
			name := fmt.Sprintf("scale %s %s %d×%d", pt.Work, pt.Store, pt.Workers, pt.Concurrency)
			if pt.BatchesPerSec <= 0 || pt.Verdict == "" || pt.Pipeline == nil || pt.Pipeline.Slots != pt.Workers*pt.Concurrency {
				t.Errorf("%s: %+v", name, pt)
			}
			// Every batch is queued in Redis; every batch but a no-op one
			// on the Redis store commits a transaction in PostgreSQL.
			if pt.Redis.PerBatch < 1 {
				t.Errorf("%s: %.2f Redis commands per batch", name, pt.Redis.PerBatch)
			}
			if (pt.Store == storeSQL || pt.Work == workInPlace) && pt.Postgres.XactsPerBatch < 1 {
				t.Errorf("%s: %.2f PostgreSQL transactions per batch", name, pt.Postgres.XactsPerBatch)
			}
		}
	}
	var table strings.Builder
	res.WriteTable(&table)
	for _, want := range []string{"### 1. In-place backfill", "### 2. No-op", "### 3. Flow", "### 4. Time to first batch", "### 5. Store operations", "### 6. Adaptive batch size", "### 7. Scaling", "### Targets"} {
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
	if cfg, err := ParseFlags([]string{"--only", "adaptive", "--adaptive-target", "250ms"}, os.Stderr); err != nil || !cfg.runs(SectionAdaptive) || cfg.runs(SectionInPlace) || cfg.AdaptiveTarget != 250*time.Millisecond {
		t.Fatalf("--only adaptive --adaptive-target 250ms: %+v, %v", cfg, err)
	}
	for _, bad := range [][]string{{"--only", "nope"}, {"--rows", "0"}, {"--sizes", "x"}, {"extra"}, {"--adaptive-target", "5ms"}, {"--adaptive-target", "150500us"}} {
		if _, err := ParseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("ParseFlags(%q) = nil error", bad)
		}
	}
}

// The peers (River as its own process, plain asynq) do the same backfill as
// dripflow in the same run, each row bumped once (Run checks it), and each
// headline variant is reported as a ratio to each of them.
func TestPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Redis")
	}
	cfg := QuickConfig()
	cfg.PostgresURL = testenv.PostgresURL(t)
	cfg.RedisURL = testenv.RedisURL(t)
	cfg.Rows = 2500
	cfg.BatchSize = 500
	cfg.Only = []string{SectionInPlace}
	cfg.Variants = []string{VariantLoop2, VariantRedis, VariantRiver, VariantAsynq}
	cfg.Timeout = 3 * time.Minute
	cfg.Out = ""
	var progress strings.Builder
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	ip := res.InPlace
	if ip == nil || len(ip.Variants) != 4 {
		t.Fatalf("variants: %+v", ip)
	}
	for _, name := range []string{VariantRiver, VariantAsynq} {
		v := ip.variant(name)
		if v == nil || v.Batches != 5 || v.Wall <= 0 || v.VsBestLoop <= 0 || v.Settings == "" {
			t.Errorf("%s: %+v, want 5 tasks (2500 rows in ranges of 500), a wall time, a ratio to the loop and its settings", name, v)
		}
	}
	if v := ip.variant(VariantRiver); v != nil && !strings.Contains(v.Settings, "FetchCooldown 2ms") {
		t.Errorf("River settings %q lack FetchCooldown", v.Settings)
	}
	d := ip.variant(VariantRedis)
	if d == nil || d.VsRiver <= 0 || d.VsAsynq <= 0 {
		t.Fatalf("dripflow-redis has no ratio to the peers: %+v", d)
	}
	var table strings.Builder
	res.WriteTable(&table)
	for _, want := range []string{"| river — River", "| asynq — plain asynq", "- dripflow-redis (ProcessRange): vs River", "vs asynq", "dripflow-redis vs River (same backfill)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestPeerLines(t *testing.T) {
	ip := &InPlaceResult{Variants: []InPlaceVariant{
		{Name: VariantRiver, VsBestLoop: 2, VsRiver: 1, VsAsynq: 1.25},
		{Name: VariantAsynq, VsBestLoop: 1.6, VsRiver: 0.8, VsAsynq: 1},
		{Name: VariantSQLStore, VsRiver: 0.5, VsAsynq: 0.625},
		{Name: VariantRedisRecords, VsRiver: 1.5},
		{Name: VariantRedis}, // the peers did not run for it: no line
	}}
	got := strings.Join(ip.peerLines(), "\n")
	want := strings.Join([]string{
		"- river: 2.00× the best hand-written loop",
		"- asynq: 1.60× the best hand-written loop",
		"- dripflow-sql (ProcessRange): vs River 0.50×, vs asynq 0.62× (below 1: faster than the peer)",
		"- dripflow-redis-records (ProcessBatch): vs River 1.50× (below 1: faster than the peer)",
	}, "\n")
	if got != want {
		t.Errorf("peerLines:\n%s\nwant:\n%s", got, want)
	}
	res := &Results{InPlace: ip}
	var met, missed int
	for _, tg := range res.targets() {
		if strings.Contains(tg.Name, "(same backfill)") {
			if tg.Met {
				met++
			} else {
				missed++
			}
		}
	}
	if met != 2 || missed != 0 {
		t.Errorf("peer targets: %d met, %d missed; want 2 met (dripflow-sql 0.50× River, 0.62× asynq)", met, missed)
	}
}

func TestRiverPeerDir(t *testing.T) {
	dir, err := riverPeerDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		t.Errorf("River peer module at %s: %v", dir, err)
	}
}
