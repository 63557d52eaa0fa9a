package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Peers of the in-place backfill: the same backfill done with what a Go team
// would pick instead of dripflow, at the same batch size and concurrency.
const (
	// VariantRiver is River (github.com/riverqueue/river) with its pgx
	// driver: a job per key range, the UPDATE and JobCompleteTx in one
	// transaction. It runs as its own process, built from its own module
	// (bench/peers/river), so that River stays out of dripflow's go.mod.
	VariantRiver = "river"
	// VariantAsynq is plain asynq: a task per key range, the UPDATE in the
	// handler, no checkpoint.
	VariantAsynq = "asynq"
)

// River's settings in the peer, tuned for throughput as River's users tune
// it: FetchCooldown (default 100 ms, minimum 1 ms) bounds how often a
// client fetches jobs, FetchPollInterval (default 1 s, not below
// FetchCooldown) is the fallback poll when no LISTEN/NOTIFY wakes it.
const (
	riverFetchCooldown     = 2 * time.Millisecond
	riverFetchPollInterval = 20 * time.Millisecond
)

// asynqTaskCheckInterval is the plain asynq peer's TaskCheckInterval (how
// long a server sleeps on empty queues; asynq's default is 1 s): 10 ms, the
// interval dripflow's worker polls at (tasks.ServerConfig.PollInterval).
// DelayedTaskCheckInterval is left alone: the tasks are never delayed.
const asynqTaskCheckInterval = 10 * time.Millisecond

// asynqSettings describes how the plain asynq peer was tuned.
func (r *runner) asynqSettings() string {
	return fmt.Sprintf("Concurrency %d, TaskCheckInterval %s, pgxpool of %d connections", r.cfg.Concurrency, asynqTaskCheckInterval, r.cfg.Concurrency)
}

// keyRanges walks bench_rows's key in ranges of batch rows, the way the
// hand-written loop and dripflow find them (keyset: each boundary after the
// previous one), and calls emit with each range (lo, hi].
func keyRanges(ctx context.Context, conn *pgx.Conn, batch int, emit func(lo, hi int64) error) error {
	var lo int64
	for {
		var hi int64
		err := conn.QueryRow(ctx, "SELECT id FROM bench_rows WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1", lo, batch-1).Scan(&hi)
		last := errors.Is(err, pgx.ErrNoRows)
		if last {
			var top *int64
			if err := conn.QueryRow(ctx, "SELECT max(id) FROM bench_rows WHERE id > $1", lo).Scan(&top); err != nil {
				return err
			}
			if top == nil {
				return nil
			}
			hi = *top
		} else if err != nil {
			return err
		}
		if err := emit(lo, hi); err != nil {
			return err
		}
		if last {
			return nil
		}
		lo = hi
	}
}

// peerRange is the payload of a plain asynq peer task.
type peerRange struct {
	Lo int64 `json:"lo"`
	Hi int64 `json:"hi"`
}

// asynqPeer runs the backfill through plain asynq: one task per key range,
// enqueued as the ranges are found while a server of r.cfg.Concurrency runs
// them; the handler runs the range's UPDATE on a pgxpool and records
// nothing else (no checkpoint: a task asynq runs twice bumps its rows
// twice). The wall time runs from the first range looked for to the last
// task done.
func (r *runner) asynqPeer(ctx context.Context, url string) (InPlaceVariant, error) {
	conc := r.cfg.Concurrency
	_, rdb, release, err := r.svc.redisDB(ctx)
	if err != nil {
		return InPlaceVariant{}, err
	}
	defer release()
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return InPlaceVariant{}, err
	}
	pcfg.MaxConns = int32(conc)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return InPlaceVariant{}, err
	}
	defer pool.Close()
	planConn, err := pgx.Connect(ctx, url)
	if err != nil {
		return InPlaceVariant{}, err
	}
	defer planConn.Close(context.WithoutCancel(ctx))

	const queue, kind = "bench", "bench_bump"
	var (
		mu       sync.Mutex
		done     int64
		rows     int64
		total    int64 = -1 // known once every range is enqueued
		failed   error
		finished = make(chan struct{})
	)
	check := func() { // mu held
		if failed != nil || (total >= 0 && done >= total) {
			select {
			case <-finished:
			default:
				close(finished)
			}
		}
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failed == nil {
			failed = err
		}
		check()
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       conc,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: asynqTaskCheckInterval,
		LogLevel:          asynq.ErrorLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(kind, func(ctx context.Context, t *asynq.Task) error {
		var rg peerRange
		if err := json.Unmarshal(t.Payload(), &rg); err != nil {
			fail(err)
			return err
		}
		tag, err := pool.Exec(ctx, bumpSQL+" WHERE id > $1 AND id <= $2", rg.Lo, rg.Hi)
		if err != nil {
			// asynq would retry it after a backoff of seconds: the
			// measurement is void, so stop it rather than wait.
			fail(fmt.Errorf("task (%d, %d]: %w", rg.Lo, rg.Hi, err))
			return err
		}
		mu.Lock()
		done++
		rows += tag.RowsAffected()
		check()
		mu.Unlock()
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return InPlaceVariant{}, err
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)

	start := time.Now()
	go func() {
		var n int64
		err := keyRanges(ctx, planConn, r.cfg.BatchSize, func(lo, hi int64) error {
			payload, err := json.Marshal(peerRange{Lo: lo, Hi: hi})
			if err != nil {
				return err
			}
			if _, err := client.EnqueueContext(ctx, asynq.NewTask(kind, payload), asynq.Queue(queue)); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			n++
			return nil
		})
		if err != nil {
			fail(fmt.Errorf("plan: %w", err))
			return
		}
		mu.Lock()
		total = n
		check()
		mu.Unlock()
	}()
	select {
	case <-finished:
	case <-time.After(r.cfg.Timeout):
		return InPlaceVariant{}, fmt.Errorf("not finished after %s", r.cfg.Timeout)
	case <-ctx.Done():
		return InPlaceVariant{}, ctx.Err()
	}
	wall := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return InPlaceVariant{}, failed
	}
	if rows != int64(r.cfg.Rows) {
		return InPlaceVariant{}, fmt.Errorf("%d rows updated, want %d", rows, r.cfg.Rows)
	}
	return InPlaceVariant{Wall: Seconds(wall), Batches: done, Settings: r.asynqSettings()}, nil
}

// riverResult is the JSON line the River peer prints (bench/peers/river).
type riverResult struct {
	WallS             float64 `json:"wall_s"`
	Rows              int64   `json:"rows"`
	Jobs              int64   `json:"jobs"`
	MaxWorkers        int     `json:"max_workers"`
	FetchCooldownMS   float64 `json:"fetch_cooldown_ms"`
	FetchPollInterval float64 `json:"fetch_poll_interval_ms"`
	PoolMaxConns      int     `json:"pool_max_conns"`
	Insert            string  `json:"insert"`
	River             string  `json:"river"`
}

// riverPeerDir is the River peer's module (bench/peers/river), next to this
// file in the source tree, or found from the working directory upwards
// when this binary was built without its source paths (-trimpath).
func riverPeerDir() (string, error) {
	const rel = "peers/river"
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), rel)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		for _, cand := range []string{filepath.Join(dir, "bench", rel), filepath.Join(dir, rel)} {
			if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
				return cand, nil
			}
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("the River peer's module (bench/peers/river) is not found: run the benchmark from dripflow's source tree (make bench), or leave out the river variant (--variants)")
		}
	}
}

// riverPeerBinary builds the River peer once per benchmark, into a
// temporary directory removed on cleanup, and returns its path.
func (r *runner) riverPeerBinary(ctx context.Context) (string, error) {
	if r.riverBin != "" {
		return r.riverBin, nil
	}
	dir, err := riverPeerDir()
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "dripflow-bench-river-")
	if err != nil {
		return "", err
	}
	r.svc.onCleanup(func(context.Context) error { return os.RemoveAll(tmp) })
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the River peer is built with the go command: %w", err)
	}
	bin := filepath.Join(tmp, "river-peer")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = dir
	// The peer is its own module: no workspace may pull it into another.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the River peer in %s: %w\n%s", dir, err, out)
	}
	r.logf("built the River peer (%s) in %s", dir, time.Since(start).Round(time.Millisecond))
	r.riverBin = bin
	return bin, nil
}

// riverPeer runs the backfill through River, as a separate process: it
// migrates River's schema into the copy, then inserts a job per key range
// while a client of r.cfg.Concurrency workers runs them.
func (r *runner) riverPeer(ctx context.Context, url string) (InPlaceVariant, error) {
	bin, err := r.riverPeerBinary(ctx)
	if err != nil {
		return InPlaceVariant{}, err
	}
	cmd := exec.CommandContext(ctx, bin,
		"--dsn", url,
		"--batch-size", strconv.Itoa(r.cfg.BatchSize),
		"--workers", strconv.Itoa(r.cfg.Concurrency),
		"--fetch-cooldown", riverFetchCooldown.String(),
		"--fetch-poll-interval", riverFetchPollInterval.String(),
		"--timeout", r.cfg.Timeout.String(),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return InPlaceVariant{}, fmt.Errorf("the River peer: %w\n%s", err, stderr.String())
	}
	var res riverResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return InPlaceVariant{}, fmt.Errorf("the River peer printed %q: %w", stdout.String(), err)
	}
	if res.Rows != int64(r.cfg.Rows) {
		return InPlaceVariant{}, fmt.Errorf("the River peer updated %d rows, want %d", res.Rows, r.cfg.Rows)
	}
	settings := fmt.Sprintf("River %s, MaxWorkers %d, FetchCooldown %gms, FetchPollInterval %gms, pgxpool of %d connections, %s",
		res.River, res.MaxWorkers, res.FetchCooldownMS, res.FetchPollInterval, res.PoolMaxConns, res.Insert)
	return InPlaceVariant{Wall: Seconds(time.Duration(res.WallS * float64(time.Second))), Batches: res.Jobs, Settings: settings}, nil
}
