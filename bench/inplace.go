package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Variants of the in-place backfill.
const (
	VariantUpdate   = "update"         // (a) one UPDATE statement
	VariantLoop1    = "loop-1conn"     // (b) hand-written keyset loop, one connection
	VariantLoop2    = "loop-2conn"     // (b) the same on two connections
	VariantSQLStore = "dripflow-sql"   // (c) dripflow, SQL store in the data's database
	VariantRedis    = "dripflow-redis" // (d) dripflow, Redis store
	// The same two with bench_bump_records, whose batches load their
	// records and update them by key: what loading records costs.
	VariantSQLStoreRecords = "dripflow-sql-records"
	VariantRedisRecords    = "dripflow-redis-records"
	// The set-based two with the scheduler and the worker inside the
	// benchmark's process (the headline variants run them as processes).
	VariantSQLStoreInProc = "dripflow-sql-inproc"
	VariantRedisInProc    = "dripflow-redis-inproc"
)

// InPlaceResult is section 1.
type InPlaceResult struct {
	Rows      int              `json:"rows"`
	BatchSize int              `json:"batch_size"`
	Variants  []InPlaceVariant `json:"variants"`
}

// InPlaceVariant is one way of bumping every row.
type InPlaceVariant struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Wall        Seconds `json:"wall_s"`
	RowsPerSec  float64 `json:"rows_per_s"`
	// VsUpdate and VsBestLoop are Wall divided by the single UPDATE's and
	// by the faster hand-written loop's.
	VsUpdate   float64 `json:"vs_update"`
	VsBestLoop float64 `json:"vs_best_loop"`
	// VsRiver and VsAsynq are Wall divided by the River peer's and by the
	// plain asynq peer's (when they ran): below 1, faster than the peer.
	VsRiver float64 `json:"vs_river,omitempty"`
	VsAsynq float64 `json:"vs_asynq,omitempty"`
	// Settings (peers only) is how the peer was configured.
	Settings string `json:"settings,omitempty"`
	// Batches and BatchMean (dripflow only): the run's batches and the
	// mean time a worker spent in one (its transaction, checkpoint
	// included).
	Batches   int64   `json:"batches,omitempty"`
	BatchMean Seconds `json:"batch_mean_s,omitempty"`
	// Shape (dripflow only) is ShapeProcesses or ShapeInProcess, and
	// Pipeline how full the run kept the worker's slots.
	Shape    string    `json:"shape,omitempty"`
	Pipeline *Pipeline `json:"pipeline,omitempty"`
	// Rounds are the wall times of every round (Config.Repeat); Wall is
	// the fastest.
	Rounds []Seconds `json:"rounds_s"`
}

func (v InPlaceVariant) batchNote() string {
	if v.Settings != "" {
		return fmt.Sprintf("  %d tasks; %s", v.Batches, v.Settings)
	}
	if v.Batches == 0 {
		return ""
	}
	note := fmt.Sprintf("  %d batches, mean %.1f ms in a worker", v.Batches, v.BatchMean.Seconds()*1000)
	if v.Pipeline != nil {
		note += "; " + v.Pipeline.String()
	}
	return note
}

func (r *InPlaceResult) variant(name string) *InPlaceVariant {
	if r == nil {
		return nil
	}
	for i := range r.Variants {
		if r.Variants[i].Name == name {
			return &r.Variants[i]
		}
	}
	return nil
}

// template makes (once) a database holding the store's schema and
// bench_rows with rows rows, vacuumed and frozen, so that its copies all
// start from the same state.
func (r *runner) template(ctx context.Context, rows int) (string, error) {
	if r.tpl != "" && r.tplRows == rows {
		return r.tpl, nil
	}
	name, url, err := r.svc.createDB(ctx, "", false)
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		return "", fmt.Errorf("migrate store schema: %w", err)
	}
	if err := seed(ctx, url, rows); err != nil {
		return "", err
	}
	r.logf("seeded %d rows in %s", rows, time.Since(start).Round(time.Millisecond))
	r.tpl, r.tplRows = name, rows
	return name, nil
}

// seed creates the benchmark's tables in the database at url and fills
// bench_rows with ids 1..rows.
func seed(ctx context.Context, url string, rows int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, stmt := range []string{schemaSQL, seedSQL, "VACUUM (FREEZE, ANALYZE) bench_rows", "VACUUM (FREEZE, ANALYZE) bench_copies"} {
		var args []any
		if stmt == seedSQL {
			args = []any{rows}
		}
		if _, err := conn.Exec(ctx, stmt, args...); err != nil {
			return fmt.Errorf("seed %d rows: %w", rows, err)
		}
	}
	return nil
}

// largeTable is the size from which a template is copied file by file and a
// checkpoint precedes each measurement; smaller ones take less time
// without.
const largeTable = 200_000

// copyOf creates a copy of the template and returns its URL and a function
// that drops it.
func (r *runner) copyOf(ctx context.Context, tpl string) (string, func(), error) {
	large := r.tplRows >= largeTable
	name, url, err := r.svc.createDB(ctx, tpl, large)
	if err != nil {
		return "", nil, err
	}
	if large {
		r.svc.checkpoint(ctx)
	}
	return url, func() {
		if err := r.svc.dropDB(ctx, name); err != nil {
			r.logf("warning: %v", err)
		}
	}, nil
}

func (r *runner) inPlace(ctx context.Context) (*InPlaceResult, error) {
	rows := r.cfg.Rows
	r.logf("section 1: in-place backfill of %d rows, batch size %d", rows, r.cfg.BatchSize)
	tpl, err := r.template(ctx, rows)
	if err != nil {
		return nil, err
	}
	res := &InPlaceResult{Rows: rows, BatchSize: r.cfg.BatchSize}
	variants := []struct {
		name, desc string
		run        func(ctx context.Context, url string) (InPlaceVariant, error)
	}{
		{VariantUpdate, "one UPDATE statement (the floor)", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return timed(func() error { return singleUpdate(ctx, url) })
		}},
		{VariantLoop1, "hand-written keyset loop, pgx, 1 connection", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return timed(func() error { return handLoop(ctx, url, 1, r.cfg.BatchSize) })
		}},
		{VariantLoop2, fmt.Sprintf("hand-written keyset loop, pgx, %d connections", max(2, r.cfg.Concurrency)), func(ctx context.Context, url string) (InPlaceVariant, error) {
			return timed(func() error { return handLoop(ctx, url, max(2, r.cfg.Concurrency), r.cfg.BatchSize) })
		}},
		{VariantSQLStore, fmt.Sprintf("dripflow, set-based backfill (ProcessRange: one UPDATE per batch), SQL store in the same database (checkpoint in the batch's transaction), scheduler and worker as processes, worker concurrency %d, max_in_flight %d", r.cfg.Concurrency, r.cfg.MaxInFlight), func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBump, false, ShapeProcesses)
		}},
		{VariantRedis, fmt.Sprintf("dripflow, set-based backfill (ProcessRange), Redis store, scheduler and worker as processes, worker concurrency %d, max_in_flight %d", r.cfg.Concurrency, r.cfg.MaxInFlight), func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBump, true, ShapeProcesses)
		}},
		{VariantSQLStoreRecords, "as dripflow-sql, with batches that load their records (ProcessBatch) and update them by key", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBumpRecords, false, ShapeProcesses)
		}},
		{VariantRedisRecords, "as dripflow-redis, with batches that load their records (ProcessBatch) and update them by key", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBumpRecords, true, ShapeProcesses)
		}},
		{VariantRiver, "River (pgx driver), a separate process built from its own module: one job per key range inserted with InsertMany as the ranges are found, the UPDATE and river.JobCompleteTx in one transaction", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.riverPeer(ctx, url)
		}},
		{VariantAsynq, "plain asynq: one task per key range enqueued as the ranges are found, the UPDATE in the handler, no checkpoint", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.asynqPeer(ctx, url)
		}},
		{VariantSQLStoreInProc, "as dripflow-sql, with the scheduler and the worker inside the benchmark's process", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBump, false, ShapeInProcess)
		}},
		{VariantRedisInProc, "as dripflow-redis, with the scheduler and the worker inside the benchmark's process", func(ctx context.Context, url string) (InPlaceVariant, error) {
			return r.dripflowBump(ctx, url, defBump, true, ShapeInProcess)
		}},
	}
	// The River peer is built before anything is measured, so that a
	// build failure ends the benchmark early.
	if r.cfg.variant(VariantRiver) {
		if _, err := r.riverPeerBinary(ctx); err != nil {
			return nil, err
		}
	}
	// Repeats run interleaved, so that a disturbance hits one round rather
	// than one variant; each variant keeps its fastest round.
	res.Variants = make([]InPlaceVariant, len(variants))
	for round := 0; round < r.cfg.Repeat; round++ {
		for i, v := range variants {
			if !r.cfg.variant(v.name) {
				continue
			}
			url, drop, err := r.copyOf(ctx, tpl)
			if err != nil {
				return nil, err
			}
			got, err := v.run(ctx, url)
			if err == nil {
				err = verifyBumped(ctx, url, int64(rows))
			}
			drop()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			got.Name, got.Description = v.name, v.desc
			got.RowsPerSec = float64(rows) / got.Wall.Seconds()
			got.Rounds = append(res.Variants[i].Rounds, got.Wall)
			r.logf("  %-15s %8.2fs  %9.0f rows/s%s", v.name, got.Wall.Seconds(), got.RowsPerSec, got.batchNote())
			if round == 0 || got.Wall < res.Variants[i].Wall {
				res.Variants[i] = got
			} else {
				res.Variants[i].Rounds = got.Rounds
			}
		}
	}
	res.Variants = slices.DeleteFunc(res.Variants, func(v InPlaceVariant) bool { return v.Name == "" })
	floor, best := Seconds(0), Seconds(0)
	if v := res.variant(VariantUpdate); v != nil {
		floor = v.Wall
	}
	for _, name := range []string{VariantLoop1, VariantLoop2} {
		if v := res.variant(name); v != nil && (best == 0 || v.Wall < best) {
			best = v.Wall
		}
	}
	var river, asq Seconds
	if v := res.variant(VariantRiver); v != nil {
		river = v.Wall
	}
	if v := res.variant(VariantAsynq); v != nil {
		asq = v.Wall
	}
	for i := range res.Variants {
		if river > 0 {
			res.Variants[i].VsRiver = float64(res.Variants[i].Wall) / float64(river)
		}
		if asq > 0 {
			res.Variants[i].VsAsynq = float64(res.Variants[i].Wall) / float64(asq)
		}
		if floor > 0 {
			res.Variants[i].VsUpdate = float64(res.Variants[i].Wall) / float64(floor)
		}
		if best > 0 {
			res.Variants[i].VsBestLoop = float64(res.Variants[i].Wall) / float64(best)
		}
	}
	return res, nil
}

func timed(f func() error) (InPlaceVariant, error) {
	start := time.Now()
	err := f()
	return InPlaceVariant{Wall: Seconds(time.Since(start))}, err
}

// bumpSQL is the change every variant makes to a row.
const bumpSQL = "UPDATE bench_rows SET val = val + 1, updated_at = now()"

func singleUpdate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, bumpSQL)
	return err
}

// handLoop is what a user would write instead of dripflow: walk the key in
// batches (keyset pagination: each boundary is found after the previous
// one) and update each range in its own statement, on conns connections.
// The boundaries are found one at a time; the updates run side by side.
func handLoop(ctx context.Context, url string, conns, batch int) error {
	cs := make([]*pgx.Conn, conns)
	for i := range cs {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(context.WithoutCancel(ctx))
		cs[i] = c
	}
	var (
		mu     sync.Mutex
		cursor int64
		done   bool
	)
	next := func(c *pgx.Conn) (lo, hi int64, ok bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return 0, 0, false, nil
		}
		lo = cursor
		err = c.QueryRow(ctx, "SELECT id FROM bench_rows WHERE id > $1 ORDER BY id OFFSET $2 LIMIT 1", lo, batch-1).Scan(&hi)
		if errors.Is(err, pgx.ErrNoRows) {
			done = true
			var last *int64
			if err = c.QueryRow(ctx, "SELECT max(id) FROM bench_rows WHERE id > $1", lo).Scan(&last); err != nil || last == nil {
				return 0, 0, false, err
			}
			hi = *last
		} else if err != nil {
			return 0, 0, false, err
		}
		cursor = hi
		return lo, hi, true, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo, hi, ok, err := next(c)
				if err != nil || !ok {
					errs[i] = err
					return
				}
				if _, err := c.Exec(ctx, bumpSQL+" WHERE id > $1 AND id <= $2", lo, hi); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dripflowBump runs a bench_bump backfill (def) through a scheduler and a
// worker in the given shape, with the SQL store in the data's database or
// the Redis store.
func (r *runner) dripflowBump(ctx context.Context, url, def string, redisStore bool, shape string) (InPlaceVariant, error) {
	de, err := r.dripflowEnv(ctx, url, redisStore)
	if err != nil {
		return InPlaceVariant{}, err
	}
	defer de.close()
	rr, pl, err := r.runDripflow(ctx, de, shape, r.cfg.Concurrency, control.NewRun{
		Definition: def, CreatedBy: "bench",
		BatchSize: &r.cfg.BatchSize, MaxInFlight: &r.cfg.MaxInFlight,
	})
	if err != nil {
		return InPlaceVariant{}, err
	}
	return InPlaceVariant{Wall: Seconds(rr.Wall), Batches: rr.Run.BatchesSucceeded, BatchMean: pl.BatchMean, Shape: shape, Pipeline: &pl}, nil
}

// verifyBumped checks, on its own connection, that every row was bumped
// exactly once.
func verifyBumped(ctx context.Context, url string, rows int64) error {
	db, err := sqlstore.OpenDB(ctx, url, 1)
	if err != nil {
		return err
	}
	defer closeGorm(db)
	return checkBumped(ctx, db, rows)
}
