package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Results is everything one benchmark run measured.
type Results struct {
	Date    time.Time     `json:"date"`
	Command string        `json:"command"`
	Machine Machine       `json:"machine"`
	Config  ConfigSummary `json:"config"`
	Elapsed Seconds       `json:"elapsed_s"`
	// LoadBefore and LoadAfter are the 1-, 5- and 15-minute load averages
	// when the run started and ended: other work on the machine shows in
	// them.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`

	InPlace    *InPlaceResult    `json:"inplace,omitempty"`
	Noop       *NoopResult       `json:"noop,omitempty"`
	Flow       *FlowResult       `json:"flow,omitempty"`
	FirstBatch *FirstBatchResult `json:"first_batch,omitempty"`
	StoreOps   *StoreOpsResult   `json:"store_ops,omitempty"`
	Adaptive   *AdaptiveResult   `json:"adaptive,omitempty"`

	Targets []Target `json:"targets"`
}

// ConfigSummary is the part of Config the results depend on.
type ConfigSummary struct {
	Rows              int      `json:"rows"`
	FlowRows          int      `json:"flow_rows"`
	BatchSize         int      `json:"batch_size"`
	Concurrency       int      `json:"concurrency"`
	MaxInFlight       int      `json:"max_in_flight"`
	NoopBatches       int      `json:"noop_batches"`
	NoopConcurrency   int      `json:"noop_concurrency"`
	NoopInFlight      int      `json:"noop_in_flight"`
	Sizes             []int    `json:"sizes"`
	FirstBatchSamples int      `json:"first_batch_samples"`
	StoreOpsBatches   int      `json:"store_ops_batches"`
	StoreOpsParallel  int      `json:"store_ops_parallel"`
	Repeat            int      `json:"repeat"`
	Sections          []string `json:"sections"`
}

func (c Config) summary() ConfigSummary {
	secs := c.Only
	if len(secs) == 0 {
		secs = Sections
	}
	return ConfigSummary{
		Rows: c.Rows, FlowRows: c.flowRows(), BatchSize: c.BatchSize, Concurrency: c.Concurrency, MaxInFlight: c.MaxInFlight,
		NoopBatches: c.NoopBatches, NoopConcurrency: c.NoopConcurrency, NoopInFlight: c.NoopInFlight,
		Sizes: c.Sizes, FirstBatchSamples: c.FirstBatchSamples,
		StoreOpsBatches: c.StoreOpsBatches, StoreOpsParallel: c.StoreOpsParallel, Repeat: c.Repeat, Sections: secs,
	}
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs     int     `json:"cpus"`
	CPUModel string  `json:"cpu_model"`
	MemGiB   float64 `json:"mem_gib"`
	Kernel   string  `json:"kernel"`
	Go       string  `json:"go"`
	Postgres string  `json:"postgres"`
	Redis    string  `json:"redis"`
}

func machineInfo(ctx context.Context, r *runner) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb, ok := procField("/proc/meminfo", "MemTotal"); ok {
		m.MemGiB = float64(kb) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if conn, err := pgx.Connect(ctx, r.cfg.PostgresURL); err == nil {
		var v string
		if conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			m.Postgres = v
		}
		conn.Close(ctx)
	}
	if opts, err := redis.ParseURL(r.cfg.RedisURL); err == nil {
		c := redis.NewClient(opts)
		if info, err := c.Info(ctx, "server").Result(); err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					m.Redis = v
				}
			}
		}
		c.Close()
	}
	return m
}

// loadAverage returns the three load averages of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// procField reads a "Name:   123 kB" line of a /proc status file, in kB.
func procField(path, name string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || k != name {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// WriteJSON writes the results, indented, to path.
func (res *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func strconvFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }
