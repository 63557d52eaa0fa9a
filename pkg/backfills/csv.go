package backfills

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/dbtx"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// CSVDefinition describes a backfill whose input is the rows of a CSV file
// given when the run starts (maintenance_tasks' CSV tasks): P has a
// params.CSV field, which the run stores, and its rows — numbered 1..N,
// the line after the header being 1 — are the run's keys. Each batch gets
// its rows, keyed by the header's names, and writes in a transaction of
// the application database (with the batch's checkpoint when the store
// shares it, so a row is applied once).
type CSVDefinition[P any] struct {
	Name        string
	Description string
	// CSV returns the field of p whose rows the run processes. Required.
	CSV func(p P) params.CSV
	// ProcessRows handles a batch's rows. Required.
	ProcessRows func(ctx context.Context, r *Rows[P]) error
	// Options are the default run options.
	Options Options
}

// Rows is what ProcessRows gets: the batch's rows of the CSV.
type Rows[P any] struct {
	// Records are the rows, in order, each keyed by the header's names.
	Records []map[string]string
	// First is the row number of Records[0] (rows count from 1).
	First  int
	Params P
	// DB is the transaction to write in.
	DB *gorm.DB

	written, skipped int64
	reported         bool
}

// Wrote records that n rows were written (Wrote(0) included); without a
// call, every row not Skipped counts as written.
func (r *Rows[P]) Wrote(n int64) { r.written += n; r.reported = true }

// Skipped records that n rows were left alone.
func (r *Rows[P]) Skipped(n int64) { r.skipped += n }

// RegisterCSV compiles the definition and adds it to engine.DefaultRegistry.
func RegisterCSV[P any](d CSVDefinition[P]) error {
	j, err := NewCSV(d)
	if err != nil {
		return err
	}
	return engine.DefaultRegistry.Register(j)
}

// MustRegisterCSV is RegisterCSV that panics on error, for package-level vars.
func MustRegisterCSV[P any](d CSVDefinition[P]) engine.Job {
	j, err := NewCSV(d)
	if err == nil {
		err = engine.DefaultRegistry.Register(j)
	}
	if err != nil {
		panic(err)
	}
	return j
}

// NewCSV compiles the definition into an engine.Job without registering it.
func NewCSV[P any](d CSVDefinition[P]) (engine.Job, error) {
	switch {
	case d.Name == "":
		return nil, errors.New("backfill: Name is required")
	case d.CSV == nil:
		return nil, fmt.Errorf("backfill %q: CSV, the params' CSV field, is required", d.Name)
	case d.ProcessRows == nil:
		return nil, fmt.Errorf("backfill %q: ProcessRows is required", d.Name)
	}
	spec, err := params.NewSpec[P]()
	if err != nil {
		return nil, fmt.Errorf("backfill %q: %w", d.Name, err)
	}
	var csvField string
	for _, f := range spec.Schema().Fields {
		if f.Type == params.TypeCSV && f.Required {
			csvField = f.Name
		}
	}
	if csvField == "" {
		return nil, fmt.Errorf("backfill %q: its params need a required params.CSV field", d.Name)
	}
	opts := withDefaults(d.Options)
	schema, _ := json.Marshal(spec.Schema())
	defaults, _ := json.Marshal(opts)
	cfg, _ := json.Marshal(map[string]any{"input": "rows of the CSV param " + csvField, "process": "rows", "key": "row number"})
	return &csvJob[P]{d: d, spec: spec, opts: opts, meta: store.Definition{
		Name: d.Name, Kind: store.KindBackfill, Description: d.Description,
		ParamsSchema: schema, Defaults: defaults, Config: cfg,
	}}, nil
}

type csvJob[P any] struct {
	d    CSVDefinition[P]
	spec *params.Spec[P]
	opts Options
	meta store.Definition
}

func (j *csvJob[P]) Definition() store.Definition { return j.meta }
func (j *csvJob[P]) Defaults() store.RunOptions   { return j.opts }
func (j *csvJob[P]) Params() params.Schema        { return j.spec.Schema() }

func (j *csvJob[P]) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return j.spec.Encode(p)
}

func (j *csvJob[P]) Open(ctx context.Context, env engine.Env, raw json.RawMessage) (engine.Pipeline, error) {
	if env.DB == nil {
		return nil, fmt.Errorf("backfill %q: no database configured", j.d.Name)
	}
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return &csvPipeline[P]{job: j, db: env.DB, params: p, csv: j.d.CSV(p)}, nil
}

type csvPipeline[P any] struct {
	job    *csvJob[P]
	db     *gorm.DB
	params P
	csv    params.CSV
}

func (p *csvPipeline[P]) Start(string) string { return "" }
func (p *csvPipeline[P]) Incremental() bool   { return false }
func (p *csvPipeline[P]) WritesTo() *gorm.DB  { return p.db }

func (p *csvPipeline[P]) Next(_ context.Context, lo string, size int) (string, bool, bool, error) {
	from, err := rowNumber(lo)
	if err != nil {
		return "", false, false, err
	}
	n := p.csv.Len()
	if from >= n {
		return "", false, false, nil
	}
	to := min(from+size, n)
	hi, err := keyset.Encode(keyset.Key{int64(to)})
	return hi, to < n, true, err
}

func (p *csvPipeline[P]) Count(context.Context) (int64, bool, error) {
	return int64(p.csv.Len()), false, nil
}

func (p *csvPipeline[P]) Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	from, err := rowNumber(lo)
	if err != nil {
		return store.Result{}, err
	}
	to, err := rowNumber(hi)
	if err != nil {
		return store.Result{}, err
	}
	if to > p.csv.Len() || to < from {
		return store.Result{}, fmt.Errorf("rows (%d, %d] are not in the CSV's %d rows", from, to, p.csv.Len())
	}
	return dbtx.Within(ctx, p.db, tx, func(tx *gorm.DB) (store.Result, error) {
		r := &Rows[P]{First: from + 1, Params: p.params, DB: tx.WithContext(ctx)}
		for n := from + 1; n <= to; n++ {
			r.Records = append(r.Records, p.csv.Row(n))
		}
		if err := p.job.d.ProcessRows(ctx, r); err != nil {
			return store.Result{}, err
		}
		if !r.reported {
			r.written = max(int64(len(r.Records))-r.skipped, 0)
		}
		return store.Result{RowsRead: int64(len(r.Records)), RowsWritten: r.written, RowsSkipped: r.skipped}, nil
	})
}

// rowNumber decodes a batch bound: "" is before row 1, "[n]" after row n.
func rowNumber(s string) (int, error) {
	k, err := keyset.Decode(s)
	if err != nil || k == nil {
		return 0, err
	}
	n, ok := k[0].(int64)
	if len(k) != 1 || !ok || n < 0 {
		return 0, fmt.Errorf("row bound %q: want [row number]", s)
	}
	return int(n), nil
}
