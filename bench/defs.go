package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// Names of the benchmark's definitions.
const (
	// defBump is the in-place backfill val = val + 1 as a user writes it
	// with dripflow: set-based (ProcessRange), one UPDATE per batch.
	defBump = "bench_bump"
	// defBumpRecords is the same written over the batch's records
	// (ProcessBatch): it loads them, adds 1 to each in Go and writes them
	// back by key with Batch.Save (one statement per batch).
	defBumpRecords = "bench_bump_records"
	defCopy        = "bench_copy" // flow: bench_rows → bench_copies, upsert by id
	defNoop        = "bench_noop" // batches that do nothing
)

// Row is a row of bench_rows, the table every section works on.
type Row struct {
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Val       int64
	Pad       string
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (Row) TableName() string { return "bench_rows" }

// schemaSQL creates bench_rows and bench_copies (the flow's sink).
const schemaSQL = `
CREATE TABLE bench_rows (
	id         bigint PRIMARY KEY,
	val        bigint NOT NULL,
	pad        text NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE TABLE bench_copies (
	id         bigint PRIMARY KEY,
	val        bigint NOT NULL,
	pad        text NOT NULL,
	updated_at timestamptz NOT NULL
)`

// seedSQL fills bench_rows with ids 1..$1, val 0 and a 32-character pad.
const seedSQL = `INSERT INTO bench_rows (id, val, pad, updated_at)
SELECT g, 0, md5(g::text), now() - interval '1 day' FROM generate_series(1, $1::bigint) AS g`

// registry returns a registry holding the benchmark's definitions.
func registry() (*engine.Registry, error) {
	reg := engine.NewRegistry()
	if err := registerDefs(reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// registerDefs adds the benchmark's definitions to reg.
func registerDefs(reg *engine.Registry) error {
	bump, err := backfills.New(backfills.Definition[Row, struct{}]{
		Name:        defBump,
		Description: "Add 1 to val of every row (the in-place backfill measured against one UPDATE).",
		// What a user writes for a set-based change: one statement over
		// the batch's range, no record loaded (gorm sets updated_at).
		ProcessRange: func(ctx context.Context, r *backfills.Range[Row, struct{}]) error {
			return r.Updates(map[string]any{"val": gorm.Expr("val + 1")})
		},
	})
	if err != nil {
		return err
	}
	bumpRecords, err := backfills.New(backfills.Definition[Row, struct{}]{
		Name:        defBumpRecords,
		Description: "Add 1 to val of every row, loading each batch's records and writing them back by key.",
		// What a user writes for a change computed record by record: the
		// records change in Go, Save writes the changed ones (and
		// updated_at) in one statement.
		ProcessBatch: func(ctx context.Context, b *backfills.Batch[Row, struct{}]) error {
			for i := range b.Records {
				b.Records[i].Val++
			}
			return b.Save("val")
		},
	})
	if err != nil {
		return err
	}
	cp, err := flows.New(flows.Flow{
		Name:        defCopy,
		Description: "Copy bench_rows into bench_copies, upserting by id.",
		Source:      &sqlconn.Source{Table: "bench_rows", Columns: []string{"id", "val", "pad", "updated_at"}},
		Sink:        &sqlconn.Sink{Table: "bench_copies", Mode: sqlconn.Upsert, Key: []string{"id"}, ChunkSize: 1000},
	})
	if err != nil {
		return err
	}
	noop, err := newNoopJob()
	if err != nil {
		return err
	}
	for _, j := range []engine.Job{bump, bumpRecords, cp, noop} {
		if err := reg.Register(j); err != nil {
			return err
		}
	}
	return nil
}

// noopParams say how many batches a bench_noop run has.
type noopParams struct {
	Batches int `json:"batches" help:"number of batches" required:"true"`
}

// noopJob is a job whose batches cost nothing to plan or process, so a run
// of it measures dripflow's own cost per batch: planning steps, the store's
// enqueue, claim and checkpoint, the queue, and events. Its keys are the
// integers 1..batches, one per batch.
type noopJob struct {
	spec *params.Spec[noopParams]
	meta store.Definition
	opts store.RunOptions
}

func newNoopJob() (*noopJob, error) {
	spec, err := params.NewSpec[noopParams]()
	if err != nil {
		return nil, err
	}
	schema, _ := json.Marshal(spec.Schema())
	opts := store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 16}
	defaults, _ := json.Marshal(opts)
	return &noopJob{spec: spec, opts: opts, meta: store.Definition{
		Name: defNoop, Kind: store.KindBackfill, Description: "Batches that do nothing.",
		ParamsSchema: schema, Defaults: defaults,
	}}, nil
}

func (j *noopJob) Definition() store.Definition { return j.meta }
func (j *noopJob) Defaults() store.RunOptions   { return j.opts }
func (j *noopJob) Params() params.Schema        { return j.spec.Schema() }

func (j *noopJob) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return j.spec.Encode(p)
}

func (j *noopJob) Open(_ context.Context, _ engine.Env, raw json.RawMessage) (engine.Pipeline, error) {
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return noopPipeline{n: int64(p.Batches)}, nil
}

type noopPipeline struct{ n int64 }

func (noopPipeline) Start(string) string                          { return "" }
func (noopPipeline) Incremental() bool                            { return false }
func (noopPipeline) WritesTo() *gorm.DB                           { return nil }
func (p noopPipeline) Count(context.Context) (int64, bool, error) { return p.n, false, nil }

func (p noopPipeline) Next(_ context.Context, lo string, _ int) (string, bool, bool, error) {
	var last int64
	if lo != "" {
		k, err := keyset.Decode(lo)
		if err != nil {
			return "", false, false, err
		}
		last, _ = k[0].(int64)
	}
	if last >= p.n {
		return "", false, false, nil
	}
	hi, err := keyset.Encode(keyset.Key{last + 1})
	return hi, last+1 < p.n, true, err
}

func (noopPipeline) Process(context.Context, *gorm.DB, string, string) (store.Result, error) {
	return store.Result{RowsRead: 1, RowsWritten: 1}, nil
}

var _ engine.Job = (*noopJob)(nil)

// checkBumped verifies that every row of bench_rows was bumped exactly once.
func checkBumped(ctx context.Context, db *gorm.DB, rows int64) error {
	var r struct{ N, Wrong int64 }
	err := db.WithContext(ctx).Raw("SELECT count(*) AS n, count(*) FILTER (WHERE val <> 1) AS wrong FROM bench_rows").Scan(&r).Error
	if err != nil {
		return fmt.Errorf("check bench_rows: %w", err)
	}
	if r.N != rows || r.Wrong != 0 {
		return fmt.Errorf("bench_rows: %d rows, %d not bumped exactly once; want %d rows all bumped once", r.N, r.Wrong, rows)
	}
	return nil
}
