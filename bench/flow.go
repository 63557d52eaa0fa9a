package bench

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// FlowResult is section 3: copying bench_rows into bench_copies with an
// upsert by id, by one INSERT … SELECT and by a dripflow flow (SQL source,
// SQL sink).
type FlowResult struct {
	Rows      int         `json:"rows"`
	BatchSize int         `json:"batch_size"`
	Insert    FlowVariant `json:"insert_select"`
	SQLStore  FlowVariant `json:"dripflow_sql"`
	Redis     FlowVariant `json:"dripflow_redis"`
	// SQLStoreInProc is SQLStore with the scheduler and the worker inside
	// the benchmark's process (the others run them as processes).
	SQLStoreInProc FlowVariant `json:"dripflow_sql_inproc"`
}

// FlowVariant is one way of copying the rows.
type FlowVariant struct {
	Description string  `json:"description"`
	Wall        Seconds `json:"wall_s"`
	RowsPerSec  float64 `json:"rows_per_s"`
	// VsInsert is Wall divided by INSERT … SELECT's.
	VsInsert  float64 `json:"vs_insert_select"`
	BatchMean Seconds `json:"batch_mean_s,omitempty"`
	// Pipeline (dripflow only) is how full the run kept the worker's slots.
	Pipeline *Pipeline `json:"pipeline,omitempty"`
	// Rounds are the wall times of every round; Wall is the fastest.
	Rounds []Seconds `json:"rounds_s"`
}

// insertSelectSQL is the single statement the flow is measured against.
const insertSelectSQL = `INSERT INTO bench_copies (id, val, pad, updated_at)
SELECT id, val, pad, updated_at FROM bench_rows
ON CONFLICT (id) DO UPDATE SET val = excluded.val, pad = excluded.pad, updated_at = excluded.updated_at`

func (r *runner) flow(ctx context.Context) (*FlowResult, error) {
	rows := r.cfg.flowRows()
	r.logf("section 3: flow copying %d rows with upsert, batch size %d", rows, r.cfg.BatchSize)
	tpl, err := r.template(ctx, rows)
	if err != nil {
		return nil, err
	}
	res := &FlowResult{Rows: rows, BatchSize: r.cfg.BatchSize}
	type variant struct {
		name string
		dst  *FlowVariant
		desc string
		run  func(ctx context.Context, url string) (FlowVariant, error)
	}
	dripflowCopy := func(redisStore bool, shape string) func(ctx context.Context, url string) (FlowVariant, error) {
		return func(ctx context.Context, url string) (FlowVariant, error) {
			de, err := r.dripflowEnv(ctx, url, redisStore)
			if err != nil {
				return FlowVariant{}, err
			}
			defer de.close()
			rr, pl, err := r.runDripflow(ctx, de, shape, r.cfg.Concurrency, control.NewRun{
				Definition: defCopy, CreatedBy: "bench", BatchSize: &r.cfg.BatchSize, MaxInFlight: &r.cfg.MaxInFlight,
			})
			if err != nil {
				return FlowVariant{}, err
			}
			return FlowVariant{Wall: Seconds(rr.Wall), BatchMean: pl.BatchMean, Pipeline: &pl}, nil
		}
	}
	variants := []variant{
		{"insert-select", &res.Insert, "one INSERT … SELECT … ON CONFLICT (id) DO UPDATE", func(ctx context.Context, url string) (FlowVariant, error) {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return FlowVariant{}, err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			v, err := timed(func() error { _, err := conn.Exec(ctx, insertSelectSQL); return err })
			return FlowVariant{Wall: v.Wall}, err
		}},
		{"dripflow-sql", &res.SQLStore, fmt.Sprintf("dripflow flow (sqlconn source → upsert sink), SQL store in the same database, scheduler and worker as processes, worker concurrency %d, max_in_flight %d", r.cfg.Concurrency, r.cfg.MaxInFlight), dripflowCopy(false, ShapeProcesses)},
		{"dripflow-redis", &res.Redis, fmt.Sprintf("dripflow flow (sqlconn source → upsert sink), Redis store, scheduler and worker as processes, worker concurrency %d, max_in_flight %d", r.cfg.Concurrency, r.cfg.MaxInFlight), dripflowCopy(true, ShapeProcesses)},
		{"dripflow-sql-inproc", &res.SQLStoreInProc, "as the SQL store's, with the scheduler and the worker inside the benchmark's process", dripflowCopy(false, ShapeInProcess)},
	}
	for round := 0; round < r.cfg.Repeat; round++ {
		for _, v := range variants {
			if !r.cfg.variant(v.name) {
				continue
			}
			url, drop, err := r.copyOf(ctx, tpl)
			if err != nil {
				return nil, err
			}
			got, err := v.run(ctx, url)
			if err == nil {
				err = verifyCopied(ctx, url, int64(rows))
			}
			drop()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			got.Description = v.desc
			got.RowsPerSec = float64(rows) / got.Wall.Seconds()
			got.Rounds = append(v.dst.Rounds, got.Wall)
			note := ""
			if got.Pipeline != nil {
				note = "  " + got.Pipeline.String()
			}
			r.logf("  %-15s %8.2fs  %9.0f rows/s%s", v.name, got.Wall.Seconds(), got.RowsPerSec, note)
			if round == 0 || got.Wall < v.dst.Wall {
				*v.dst = got
			} else {
				v.dst.Rounds = got.Rounds
			}
		}
	}
	for _, v := range []*FlowVariant{&res.Insert, &res.SQLStore, &res.Redis, &res.SQLStoreInProc} {
		if res.Insert.Wall > 0 {
			v.VsInsert = v.Wall.Seconds() / res.Insert.Wall.Seconds()
		}
	}
	return res, nil
}

// verifyCopied checks that bench_copies equals bench_rows.
func verifyCopied(ctx context.Context, url string, rows int64) error {
	db, err := sqlstore.OpenDB(ctx, url, 1)
	if err != nil {
		return err
	}
	defer closeGorm(db)
	var c struct{ N, Diff int64 }
	err = db.WithContext(ctx).Raw(`SELECT (SELECT count(*) FROM bench_copies) AS n,
		(SELECT count(*) FROM bench_rows r LEFT JOIN bench_copies c USING (id)
		 WHERE c.id IS NULL OR c.val <> r.val OR c.pad <> r.pad OR c.updated_at <> r.updated_at) AS diff`).Scan(&c).Error
	if err != nil {
		return fmt.Errorf("check bench_copies: %w", err)
	}
	if c.N != rows || c.Diff != 0 {
		return fmt.Errorf("bench_copies has %d rows, %d differ from bench_rows; want %d equal rows", c.N, c.Diff, rows)
	}
	return nil
}
