// Command river-peer is the benchmark's River peer (bench/inplace.go): the
// in-place backfill val = val + 1 over bench_rows done as a Go team would do
// it with River (github.com/riverqueue/river) instead of dripflow. One job
// per key range, inserted with InsertMany while the ranges are found; the
// worker runs the UPDATE of its range and river.JobCompleteTx in one
// transaction. It is its own module, so that River stays out of dripflow's
// dependency graph; `make bench` builds it and runs it as a process.
//
// It runs River's migrations on the database first (rivermigrate), starts a
// client tuned for throughput, and prints one JSON line: the wall time from
// the first range being looked for to the last job's transaction committed,
// the rows updated and the settings used.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// bumpSQL is the change every variant of the benchmark makes to a row.
const bumpSQL = "UPDATE bench_rows SET val = val + 1, updated_at = now() WHERE id > $1 AND id <= $2"

// insertChunk is how many jobs one InsertMany call inserts at most while
// the ranges are being found; the first calls insert fewer (firstChunk,
// doubling), so that the workers start early.
const (
	firstChunk  = 8
	insertChunk = 100
)

// BumpArgs is one key range (Lo, Hi] of bench_rows.
type BumpArgs struct {
	Lo int64 `json:"lo"`
	Hi int64 `json:"hi"`
}

// Kind implements river.JobArgs.
func (BumpArgs) Kind() string { return "bench_bump" }

// Result is the line the peer prints.
type Result struct {
	WallS             float64 `json:"wall_s"`
	Rows              int64   `json:"rows"`
	Jobs              int64   `json:"jobs"`
	BatchSize         int     `json:"batch_size"`
	MaxWorkers        int     `json:"max_workers"`
	FetchCooldownMS   float64 `json:"fetch_cooldown_ms"`
	FetchPollInterval float64 `json:"fetch_poll_interval_ms"`
	PoolMaxConns      int32   `json:"pool_max_conns"`
	Insert            string  `json:"insert"`
	River             string  `json:"river"`
}

// progress counts finished jobs against the total, known once planning ends.
type progress struct {
	mu       sync.Mutex
	done     int64
	rows     int64
	total    int64 // -1 while ranges are still being found
	err      error
	finished chan struct{}
}

func (p *progress) check() {
	if p.err != nil || (p.total >= 0 && p.done >= p.total) {
		select {
		case <-p.finished:
		default:
			close(p.finished)
		}
	}
}

func (p *progress) jobDone(rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.rows += rows
	p.check()
}

func (p *progress) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	p.check()
}

func (p *progress) planned(total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
	p.check()
}

// BumpWorker updates its job's range and completes the job in the same
// transaction, so the job is done exactly when its rows are.
type BumpWorker struct {
	river.WorkerDefaults[BumpArgs]
	pool *pgxpool.Pool
	prog *progress
}

// Work implements river.Worker.
func (w *BumpWorker) Work(ctx context.Context, job *river.Job[BumpArgs]) error {
	rows, err := w.work(ctx, job)
	if err != nil {
		// A failed job would be retried after a backoff of seconds: the
		// measurement is void, so stop it rather than wait.
		w.prog.fail(fmt.Errorf("job %d (%d, %d]: %w", job.ID, job.Args.Lo, job.Args.Hi, err))
		return err
	}
	w.prog.jobDone(rows)
	return nil
}

func (w *BumpWorker) work(ctx context.Context, job *river.Job[BumpArgs]) (int64, error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	tag, err := tx.Exec(ctx, bumpSQL, job.Args.Lo, job.Args.Hi)
	if err != nil {
		return 0, err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "river-peer:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := flag.String("dsn", "", "PostgreSQL URL of the database holding bench_rows (River's tables are created in it)")
	batch := flag.Int("batch-size", 1000, "rows per job (key range)")
	workers := flag.Int("workers", 2, "MaxWorkers of the queue (dripflow's worker concurrency)")
	cooldown := flag.Duration("fetch-cooldown", 2*time.Millisecond, "River's FetchCooldown (default 100ms, minimum 1ms)")
	poll := flag.Duration("fetch-poll-interval", 20*time.Millisecond, "River's FetchPollInterval (default 1s, at least FetchCooldown)")
	timeout := flag.Duration("timeout", 30*time.Minute, "longest the backfill may take")
	flag.Parse()
	switch {
	case *dsn == "":
		return errors.New("--dsn is required")
	case *batch < 1 || *workers < 1:
		return errors.New("--batch-size and --workers must be positive")
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	pcfg, err := pgxpool.ParseConfig(*dsn)
	if err != nil {
		return fmt.Errorf("parse --dsn: %w", err)
	}
	// Room for every worker's transaction plus River's own producer,
	// completer, leader election and LISTEN connection.
	pcfg.MaxConns = max(pcfg.MaxConns, int32(*workers)+4)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)

	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}

	prog := &progress{total: -1, finished: make(chan struct{})}
	workersReg := river.NewWorkers()
	river.AddWorker(workersReg, &BumpWorker{pool: pool, prog: prog})
	client, err := river.NewClient(driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:           workersReg,
		FetchCooldown:     *cooldown,
		FetchPollInterval: *poll,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer scancel()
		_ = client.Stop(sctx)
	}()

	start := time.Now()
	go func() {
		n, err := plan(ctx, pool, client, int64(*batch))
		if err != nil {
			prog.fail(fmt.Errorf("plan: %w", err))
			return
		}
		prog.planned(n)
	}()
	select {
	case <-prog.finished:
	case <-ctx.Done():
		return fmt.Errorf("not finished after %s: %w", *timeout, ctx.Err())
	}
	wall := time.Since(start)
	prog.mu.Lock()
	defer prog.mu.Unlock()
	if prog.err != nil {
		return prog.err
	}
	res := Result{
		WallS: wall.Seconds(), Rows: prog.rows, Jobs: prog.done, BatchSize: *batch, MaxWorkers: *workers,
		FetchCooldownMS: ms(*cooldown), FetchPollInterval: ms(*poll), PoolMaxConns: pcfg.MaxConns,
		Insert: fmt.Sprintf("InsertMany, %d to %d jobs a call", firstChunk, insertChunk), River: riverVersion(),
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// plan walks bench_rows's key in ranges of batch rows (keyset: each
// boundary is found after the previous one, as the hand-written loop and
// dripflow find them) and inserts a job per range, up to insertChunk jobs
// per InsertMany call. It returns the jobs inserted.
func plan(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], batch int64) (int64, error) {
	var (
		lo, n   int64
		pending []river.InsertManyParams
		chunk   = firstChunk
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := client.InsertMany(ctx, pending); err != nil {
			return fmt.Errorf("insert jobs: %w", err)
		}
		n += int64(len(pending))
		pending = pending[:0]
		chunk = min(2*chunk, insertChunk)
		return nil
	}
	for {
		var hi int64
		err := pool.QueryRow(ctx, "SELECT id FROM bench_rows WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1", lo, batch-1).Scan(&hi)
		last := errors.Is(err, pgx.ErrNoRows)
		if last {
			var top *int64
			if err := pool.QueryRow(ctx, "SELECT max(id) FROM bench_rows WHERE id > $1", lo).Scan(&top); err != nil {
				return 0, err
			}
			if top == nil {
				return n, flush()
			}
			hi = *top
		} else if err != nil {
			return 0, err
		}
		pending = append(pending, river.InsertManyParams{Args: BumpArgs{Lo: lo, Hi: hi}})
		if len(pending) >= chunk || last {
			if err := flush(); err != nil {
				return 0, err
			}
		}
		if last {
			return n, nil
		}
		lo = hi
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// riverVersion is the River module version this binary was built with.
func riverVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/riverqueue/river" {
				return d.Version
			}
		}
	}
	return "unknown"
}
