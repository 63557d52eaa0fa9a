package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
)

// runner runs the sections of one benchmark.
type runner struct {
	cfg Config
	svc *services
	reg *engine.Registry
	out io.Writer

	// tpl is the template database holding the store's schema and
	// bench_rows with tplRows rows, made once and copied for every variant
	// that needs that state.
	tpl     string
	tplRows int

	// riverBin is the River peer, built once (riverPeerBinary).
	riverBin string
}

// Run measures the selected sections and returns the results. It writes
// cfg.Out when set. Every database and Redis database it made is removed
// before it returns.
func Run(ctx context.Context, cfg Config) (res *Results, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, svc: newServices(cfg.PostgresURL, cfg.RedisURL), reg: reg, out: cfg.Progress}
	if r.out == nil {
		r.out = io.Discard
	}
	defer func() {
		if cerr := r.svc.cleanup(ctx); cerr != nil && err == nil {
			err = fmt.Errorf("clean up: %w", cerr)
		}
	}()
	res = &Results{Date: time.Now().UTC(), Command: cfg.Command, Config: cfg.summary(), LoadBefore: loadAverage()}
	res.Machine = machineInfo(ctx, r)
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
		// The scheduler and worker processes profile themselves beside it.
		os.Setenv(processProfileEnv, filepath.Dir(cfg.CPUProfile))
	}
	start := time.Now()
	if cfg.runs(SectionInPlace) {
		if res.InPlace, err = r.inPlace(ctx); err != nil {
			return res, fmt.Errorf("in-place backfill: %w", err)
		}
	}
	if cfg.runs(SectionNoop) {
		if res.Noop, err = r.noop(ctx); err != nil {
			return res, fmt.Errorf("no-op batches: %w", err)
		}
	}
	if cfg.runs(SectionFlow) {
		if res.Flow, err = r.flow(ctx); err != nil {
			return res, fmt.Errorf("flow copy: %w", err)
		}
	}
	if cfg.runs(SectionFirstBatch) {
		if res.FirstBatch, err = r.firstBatch(ctx); err != nil {
			return res, fmt.Errorf("time to first batch: %w", err)
		}
	}
	if cfg.runs(SectionStoreOps) {
		if res.StoreOps, err = r.storeOps(ctx); err != nil {
			return res, fmt.Errorf("store overhead: %w", err)
		}
	}
	if cfg.runs(SectionAdaptive) {
		if res.Adaptive, err = r.adaptive(ctx); err != nil {
			return res, fmt.Errorf("adaptive batch size: %w", err)
		}
	}
	res.Elapsed = Seconds(time.Since(start))
	res.LoadAfter = loadAverage()
	res.Targets = res.targets()
	if cfg.Out != "" {
		if err := res.WriteJSON(cfg.Out); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
