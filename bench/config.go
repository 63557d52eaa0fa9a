package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sections of the benchmark, in the order they run.
const (
	SectionInPlace    = "inplace"    // 1. in-place backfill: UPDATE, hand-written loops, dripflow, River and plain asynq
	SectionNoop       = "noop"       // 2. no-op batches: dripflow against plain asynq
	SectionFlow       = "flow"       // 3. flow copy with upsert against INSERT … SELECT
	SectionFirstBatch = "firstbatch" // 4. time to first batch and RSS, as processes
	SectionStoreOps   = "storeops"   // 5. store cost per batch: SQL on PostgreSQL against Redis
	SectionAdaptive   = "adaptive"   // 6. adaptive batch size against the hand-written loop at its best size
)

// Sections lists every section in run order.
var Sections = []string{SectionInPlace, SectionNoop, SectionFlow, SectionFirstBatch, SectionStoreOps, SectionAdaptive}

// Config is what a benchmark run measures and where.
type Config struct {
	// PostgresURL is an existing database on the server the benchmark
	// creates its throwaway databases on (it needs CREATEDB).
	PostgresURL string
	// RedisURL is the Redis server; the benchmark reserves numbered
	// databases 1–15 on it as the tests do.
	RedisURL string

	// Rows is the table size of the in-place backfill and the flow copy.
	Rows int
	// FlowRows is the table size of the flow copy (0: Rows).
	FlowRows int
	// BatchSize is the batch size of every backfill and flow.
	BatchSize int
	// Concurrency is the worker concurrency of the in-place backfill, the
	// flow and the processes, and the connections of the widest
	// hand-written loop.
	Concurrency int
	// MaxInFlight is the runs' max_in_flight in those sections.
	MaxInFlight int

	// NoopBatches is the number of no-op batches (and plain asynq tasks).
	NoopBatches int
	// NoopConcurrency is the worker concurrency of the no-op comparison,
	// for dripflow and asynq alike; NoopInFlight is the no-op run's
	// max_in_flight.
	NoopConcurrency int
	NoopInFlight    int

	// Sizes are the table sizes of the time-to-first-batch and RSS
	// section; FirstBatchSamples runs are timed at each.
	Sizes             []int
	FirstBatchSamples int

	// StoreOpsBatches is the number of batches driven straight through each
	// store; StoreOpsParallel the goroutines of its parallel part.
	StoreOpsBatches  int
	StoreOpsParallel int

	// AdaptiveTarget is the target_batch_ms of section 6's adaptive run.
	AdaptiveTarget time.Duration

	// Repeat runs each variant of sections 1–3 this many times, the
	// rounds interleaved; the fastest round counts. The no-op batches
	// through the SQL store run once (they take minutes).
	Repeat int

	// Only selects sections (nil: all); Variants selects variants of
	// sections 1–3 by name (nil: all), for profiling one of them.
	Only     []string
	Variants []string
	// Out is the JSON file written at the end ("" writes none).
	Out string
	// Command is how the benchmark was started, for the report.
	Command string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
	// Timeout bounds each run.
	Timeout time.Duration
	// CPUProfile, when set, is where a CPU profile of the whole benchmark
	// process is written (the in-process scheduler and worker included).
	CPUProfile string
	// Timeline, when set, is a directory that gets each dripflow run's
	// batches as CSV (created, enqueued, started, finished, duration).
	Timeline string
}

// DefaultConfig is the full benchmark.
func DefaultConfig() Config {
	return Config{
		PostgresURL:       envOr("DRIPFLOW_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		RedisURL:          envOr("DRIPFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
		Rows:              2_000_000,
		BatchSize:         1000,
		Concurrency:       2,
		MaxInFlight:       4,
		NoopBatches:       50_000,
		NoopConcurrency:   8,
		NoopInFlight:      64,
		Sizes:             []int{1_000_000, 10_000_000},
		FirstBatchSamples: 5,
		StoreOpsBatches:   5000,
		StoreOpsParallel:  8,
		AdaptiveTarget:    100 * time.Millisecond,
		Repeat:            2,
		Out:               "bench-results/results.json",
		Timeout:           30 * time.Minute,
	}
}

// QuickConfig is a smoke run: every section at sizes that take seconds.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Rows = 20_000
	c.NoopBatches = 2000
	c.Sizes = []int{10_000, 50_000}
	c.FirstBatchSamples = 2
	c.StoreOpsBatches = 500
	c.Timeout = 2 * time.Minute
	c.Repeat = 1
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ParseFlags reads the command line into a Config.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	quick := false
	for _, a := range args {
		if a == "--quick" || a == "-quick" || a == "--quick=true" || a == "-quick=true" {
			quick = true
		}
	}
	c := DefaultConfig()
	if quick {
		c = QuickConfig()
	}
	fs := flag.NewFlagSet("dripflow-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("quick", false, "smoke run: tiny sizes for every section (flags given after it still apply)")
	fs.StringVar(&c.PostgresURL, "postgres-url", c.PostgresURL, "PostgreSQL to create throwaway databases on (DRIPFLOW_TEST_POSTGRES_URL)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis whose databases 1-15 the benchmark may reserve (DRIPFLOW_TEST_REDIS_URL)")
	fs.IntVar(&c.Rows, "rows", c.Rows, "rows of the in-place backfill (section 1) and the flow copy (section 3)")
	fs.IntVar(&c.FlowRows, "flow-rows", c.FlowRows, "rows of the flow copy (0: --rows)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "batch size of backfills and flows")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "worker concurrency, and connections of the widest hand-written loop")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", c.MaxInFlight, "max_in_flight of the backfill and flow runs")
	fs.IntVar(&c.NoopBatches, "noop-batches", c.NoopBatches, "no-op batches through dripflow and tasks through plain asynq")
	fs.IntVar(&c.NoopConcurrency, "noop-concurrency", c.NoopConcurrency, "worker concurrency of the no-op comparison (both sides)")
	fs.IntVar(&c.NoopInFlight, "noop-in-flight", c.NoopInFlight, "max_in_flight of the no-op run")
	sizes := fs.String("sizes", joinInts(c.Sizes), "table sizes of the time-to-first-batch and RSS section, comma-separated")
	fs.IntVar(&c.FirstBatchSamples, "first-batch-samples", c.FirstBatchSamples, "runs timed to their first batch at each size")
	fs.IntVar(&c.StoreOpsBatches, "store-ops-batches", c.StoreOpsBatches, "batches driven straight through each store (section 5)")
	fs.IntVar(&c.StoreOpsParallel, "store-ops-parallel", c.StoreOpsParallel, "goroutines of section 5's parallel part")
	fs.DurationVar(&c.AdaptiveTarget, "adaptive-target", c.AdaptiveTarget, "target_batch_ms of section 6's adaptive run, as a duration (10ms..10m)")
	fs.IntVar(&c.Repeat, "repeat", c.Repeat, "rounds of each variant in sections 1-3, interleaved; the fastest counts (no-op batches through the SQL store: once)")
	only := fs.String("only", "", "comma-separated sections to run: "+strings.Join(Sections, ","))
	variants := fs.String("variants", "", "comma-separated variants of sections 1-3 to run (profiling; ratios need the baselines): update,loop-1conn,loop-2conn,dripflow-sql,dripflow-redis,dripflow-sql-records,dripflow-redis-records,river,asynq,insert-select")
	fs.StringVar(&c.Out, "out", c.Out, "JSON results file (empty: none)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "longest one run may take")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the benchmark process (in-process dripflow included) to this file")
	fs.StringVar(&c.Timeline, "timeline", "", "write each dripflow run's batch timeline as CSV into this directory")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.Sizes, err = parseInts(*sizes); err != nil {
		return c, fmt.Errorf("--sizes: %w", err)
	}
	if *only != "" {
		c.Only = strings.Split(*only, ",")
	}
	if *variants != "" {
		c.Variants = strings.Split(*variants, ",")
	}
	return c, c.Validate()
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.PostgresURL == "" || c.RedisURL == "":
		return errors.New("the PostgreSQL and Redis URLs are required")
	case c.Rows < 1 || c.FlowRows < 0:
		return errors.New("--rows must be positive and --flow-rows not negative")
	case c.BatchSize < 1:
		return errors.New("--batch-size must be positive")
	case c.Concurrency < 1 || c.MaxInFlight < 1:
		return errors.New("--concurrency and --max-in-flight must be positive")
	case c.NoopBatches < 1 || c.NoopConcurrency < 1 || c.NoopInFlight < 1:
		return errors.New("--noop-batches, --noop-concurrency and --noop-in-flight must be positive")
	case len(c.Sizes) == 0 || c.FirstBatchSamples < 1:
		return errors.New("--sizes needs at least one size and --first-batch-samples must be positive")
	case c.StoreOpsBatches < 1 || c.StoreOpsParallel < 1:
		return errors.New("--store-ops-batches and --store-ops-parallel must be positive")
	case c.Repeat < 1:
		return errors.New("--repeat must be positive")
	case c.AdaptiveTarget%time.Millisecond != 0 || c.AdaptiveTarget < 10*time.Millisecond || c.AdaptiveTarget > 10*time.Minute:
		return errors.New("--adaptive-target must be whole milliseconds between 10ms and 10m")
	case c.Timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	for _, s := range c.Sizes {
		if s < 1 {
			return fmt.Errorf("--sizes: %d is not positive", s)
		}
	}
	for _, s := range c.Only {
		if !slices.Contains(Sections, s) {
			return fmt.Errorf("--only: unknown section %q (known: %s)", s, strings.Join(Sections, ", "))
		}
	}
	return nil
}

func (c Config) runs(section string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, section)
}

func (c Config) variant(name string) bool {
	return len(c.Variants) == 0 || slices.Contains(c.Variants, name)
}

func (c Config) flowRows() int {
	if c.FlowRows > 0 {
		return c.FlowRows
	}
	return c.Rows
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ReplaceAll(f, "_", ""))
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mult, f = 1_000_000, f[:len(f)-1]
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mult, f = 1000, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
