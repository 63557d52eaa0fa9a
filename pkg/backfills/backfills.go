package backfills

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/dbtx"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// Options are a definition's default run options; zero fields take the
// package defaults, and a run may override them.
type Options = store.RunOptions

// Defaults for options a definition leaves zero.
var Defaults = Options{
	BatchSize:    1000,
	MaxAttempts:  5,
	MaxInFlight:  4,
	BatchTimeout: 10 * time.Minute,
}

// ErrSkip, returned by ProcessElement, counts the record as skipped rather
// than written.
var ErrSkip = errors.New("skip record")

// Definition describes a backfill over model M with params P (a struct; use
// struct{} for none).
type Definition[M any, P any] struct {
	// Name identifies the backfill (runs, API, UI); snake_case by convention.
	Name        string
	Description string
	// Scope narrows db (a query over M) to the records to process. Nil means
	// every record of M. It is applied when planning and again inside each
	// batch's range when the batch runs.
	Scope func(db *gorm.DB, p P) *gorm.DB
	// ProcessBatch handles a batch's records. Exactly one of ProcessBatch,
	// ProcessElement and ProcessRange must be set.
	ProcessBatch func(ctx context.Context, b *Batch[M, P]) error
	// ProcessElement handles one record.
	ProcessElement func(ctx context.Context, e *Element[M, P]) error
	// ProcessRange handles a batch as a query, for set-based changes: no
	// record is loaded, and r.Update, r.Updates or r.Delete change the
	// scope's records in the batch's key range in one statement — as fast
	// as a hand-written loop of UPDATE … WHERE id > ? AND id <= ?.
	ProcessRange func(ctx context.Context, r *Range[M, P]) error
	// Key names the key column(s) to batch by; default M's primary key.
	Key []string
	// Options are the default run options.
	Options Options
	// OnStart, OnComplete and OnError are called by the leading scheduler
	// when a run of the backfill starts, succeeds, or fails (failed
	// batches, error budget exhausted); a cancelled run calls neither of
	// the last two. Each is called once per event of a run, bounded by a
	// timeout (DRIPFLOW_HOOK_TIMEOUT, default 1m); an error or panic is
	// logged and recorded on the run's timeline and changes nothing else.
	// If the scheduler dies while a hook runs, the next leader calls it
	// again: make its effects idempotent with RunInfo.Key.
	OnStart, OnComplete, OnError notify.HookFunc
	// Webhooks receive the backfill's run events besides the global ones
	// (DRIPFLOW_WEBHOOK_URLS); a bad URL is refused by New.
	Webhooks []notify.Webhook
}

// Batch is what ProcessBatch gets.
type Batch[M any, P any] struct {
	// Records are the scope's records in the batch's range, in key order.
	// Change them and call Save to write the changed ones back.
	Records []M
	Params  P
	// DB is the transaction to write in.
	DB *gorm.DB

	ctx      context.Context
	orig     []M // the records as loaded, for Keys and Save
	w        *writer[M]
	bounds   []any // the batch's range for Save, when the key is the primary key
	keys     []any
	written  *int64
	skipped  *int64
	reported *bool
}

// Keys returns the loaded records' primary keys (for "WHERE id IN ?").
func (b *Batch[M, P]) Keys() []any {
	if b.keys == nil && b.w != nil {
		b.keys = make([]any, len(b.orig))
		for i := range b.orig {
			b.keys[i], _ = b.w.key.ValueOf(b.ctx, reflect.ValueOf(&b.orig[i]).Elem())
		}
	}
	return b.keys
}

// Wrote records that n rows were written (Wrote(0) included); without a
// call, every record not Skipped counts as written.
func (b *Batch[M, P]) Wrote(n int64) { *b.written += n; *b.reported = true }

// Skipped records that n records were skipped.
func (b *Batch[M, P]) Skipped(n int64) { *b.skipped += n }

// Element is what ProcessElement gets.
type Element[M any, P any] struct {
	Record *M
	Params P
	// DB is the transaction to write in.
	DB *gorm.DB
}

// Range is what ProcessRange gets: the scope's records in the batch's key
// range, as a query rather than loaded. Rows count as read and written as
// its statements report them; on MySQL, which reports the rows a statement
// changed rather than those it matched, a record left as it was is not
// counted. The scope's conditions apply; a scope with joins, limits or
// orders cannot be updated or deleted through.
type Range[M any, P any] struct {
	Params P
	// DB is the transaction to write in.
	DB *gorm.DB

	query   func() *gorm.DB
	written int64
	skipped int64
}

// Query returns a fresh query, in the batch's transaction, over the scope's
// records in the batch's key range (without an order). Count what a
// statement of your own on it changes with Wrote.
func (r *Range[M, P]) Query() *gorm.DB { return r.query() }

// Update sets column to value (a value or a gorm.Expr) on every record of
// the range in one UPDATE and counts the rows it changed as written. As with
// gorm's Update, an UpdatedAt field of the model is set too.
func (r *Range[M, P]) Update(column string, value any) error {
	return r.count(r.query().Update(column, value), "update "+column)
}

// Updates is Update of several columns: values is a map[string]any or a
// struct of M, as gorm's Updates takes (a struct's zero fields are left out).
func (r *Range[M, P]) Updates(values any) error {
	return r.count(r.query().Updates(values), "update")
}

// Delete deletes the range's records in one DELETE (a soft delete for a
// model with gorm.DeletedAt) and counts them as written.
func (r *Range[M, P]) Delete() error {
	return r.count(r.query().Delete(new(M)), "delete")
}

// Wrote records that n rows were written by a statement of your own.
func (r *Range[M, P]) Wrote(n int64) { r.written += n }

// Skipped records that n records were left alone.
func (r *Range[M, P]) Skipped(n int64) { r.skipped += n }

func (r *Range[M, P]) count(res *gorm.DB, what string) error {
	if res.Error != nil {
		return fmt.Errorf("%s: %w", what, res.Error)
	}
	r.written += res.RowsAffected
	return nil
}

// Register compiles the definition and adds it to engine.DefaultRegistry.
func Register[M any, P any](d Definition[M, P]) error {
	j, err := New(d)
	if err != nil {
		return err
	}
	return engine.DefaultRegistry.Register(j)
}

// MustRegister is Register that panics on error, for package-level vars.
func MustRegister[M any, P any](d Definition[M, P]) engine.Job {
	j, err := New(d)
	if err == nil {
		err = engine.DefaultRegistry.Register(j)
	}
	if err != nil {
		panic(err)
	}
	return j
}

// New compiles the definition into an engine.Job without registering it.
func New[M any, P any](d Definition[M, P]) (engine.Job, error) {
	if d.Name == "" {
		return nil, errors.New("backfill: Name is required")
	}
	var set []string
	mode := ""
	for _, h := range []struct {
		name, mode string
		set        bool
	}{
		{"ProcessBatch", "batch", d.ProcessBatch != nil},
		{"ProcessElement", "element", d.ProcessElement != nil},
		{"ProcessRange", "range", d.ProcessRange != nil},
	} {
		if h.set {
			set, mode = append(set, h.name), h.mode
		}
	}
	switch len(set) {
	case 0:
		return nil, fmt.Errorf("backfill %q: set exactly one of ProcessBatch, ProcessElement or ProcessRange (none is set)", d.Name)
	case 1:
	default:
		return nil, fmt.Errorf("backfill %q: set exactly one of ProcessBatch, ProcessElement or ProcessRange (%s are set)", d.Name, strings.Join(set, " and "))
	}
	hooks := notify.Hooks{OnStart: d.OnStart, OnComplete: d.OnComplete, OnError: d.OnError, Webhooks: d.Webhooks}
	if err := hooks.Validate(); err != nil {
		return nil, fmt.Errorf("backfill %q: %w", d.Name, err)
	}
	if err := store.ValidateHealthChecks(d.Options.HealthChecks); err != nil {
		return nil, fmt.Errorf("backfill %q: options: %w", d.Name, err)
	}
	if reflect.TypeFor[M]().Kind() != reflect.Struct {
		return nil, fmt.Errorf("backfill %q: model %s must be a struct", d.Name, reflect.TypeFor[M]())
	}
	spec, err := params.NewSpec[P]()
	if err != nil {
		return nil, fmt.Errorf("backfill %q: %w", d.Name, err)
	}
	opts := withDefaults(d.Options)
	schema, _ := json.Marshal(spec.Schema())
	defaults, _ := json.Marshal(opts)
	shown := map[string]any{"model": reflect.TypeFor[M]().String(), "process": mode, "key": "primary key"}
	if len(d.Key) > 0 {
		shown["key"] = d.Key
	}
	if names := hooks.Declared(); len(names) > 0 {
		shown["notify"] = names
	}
	cfg, _ := json.Marshal(shown)
	return &job[M, P]{
		d:     d,
		spec:  spec,
		opts:  opts,
		hooks: hooks,
		meta: store.Definition{
			Name: d.Name, Kind: store.KindBackfill, Description: d.Description,
			ParamsSchema: schema, Defaults: defaults, Config: cfg,
		},
	}, nil
}

func withDefaults(o Options) Options { return o.WithDefaults(Defaults) }

type job[M any, P any] struct {
	d     Definition[M, P]
	spec  *params.Spec[P]
	opts  Options
	meta  store.Definition
	hooks notify.Hooks
}

// Hooks implements notify.Declarer.
func (j *job[M, P]) Hooks() notify.Hooks { return j.hooks }

func (j *job[M, P]) Definition() store.Definition { return j.meta }
func (j *job[M, P]) Defaults() store.RunOptions   { return j.opts }
func (j *job[M, P]) Params() params.Schema        { return j.spec.Schema() }

func (j *job[M, P]) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return j.spec.Encode(p)
}

func (j *job[M, P]) Open(ctx context.Context, env engine.Env, raw json.RawMessage) (engine.Pipeline, error) {
	if env.DB == nil {
		return nil, fmt.Errorf("backfill %q: no database configured", j.d.Name)
	}
	p, err := j.spec.Decode(raw)
	if err != nil {
		return nil, err
	}
	var cols []keyset.Column
	if len(j.d.Key) > 0 {
		cols = keyset.Cols(j.d.Key...)
	} else if cols, err = keyset.PrimaryKey(env.DB, new(M)); err != nil {
		return nil, fmt.Errorf("backfill %q: %w", j.d.Name, err)
	}
	stmt := &gorm.Statement{DB: env.DB}
	if err := stmt.Parse(new(M)); err != nil {
		return nil, fmt.Errorf("backfill %q: parse model: %w", j.d.Name, err)
	}
	// Batch.Keys gives the primary key, or, for a model without one, the
	// single key column the definition names.
	pkField := stmt.Schema.PrioritizedPrimaryField
	if pkField == nil && len(cols) == 1 {
		pkField = stmt.Schema.LookUpField(cols[0].Name)
	}
	if pkField == nil {
		return nil, fmt.Errorf("backfill %q: model %s has no primary key; name one key column in Key", j.d.Name, stmt.Schema.Name)
	}
	return &pipeline[M, P]{
		job: j, db: env.DB, params: p, cols: cols, table: stmt.Schema.Table, pk: pkField.Name, pkCol: pkField.DBName,
		scanner: newScanner[M](stmt.Schema), writer: newWriter[M](stmt.Schema, pkField),
	}, nil
}

type pipeline[M any, P any] struct {
	job    *job[M, P]
	db     *gorm.DB
	params P
	cols   []keyset.Column
	table  string
	pk     string // Go field name of the primary key
	pkCol  string // its column

	scanner *scanner[M] // nil when gorm's Find loads the records
	writer  *writer[M]
}

func (p *pipeline[M, P]) scoped(db *gorm.DB) *gorm.DB {
	q := db.Model(new(M))
	if p.job.d.Scope != nil {
		q = p.job.d.Scope(q, p.params)
	}
	return q
}

func (p *pipeline[M, P]) Start(string) string { return "" }
func (p *pipeline[M, P]) Incremental() bool   { return false }
func (p *pipeline[M, P]) WritesTo() *gorm.DB  { return p.db }

func (p *pipeline[M, P]) Next(ctx context.Context, lo string, size int) (string, bool, bool, error) {
	return engine.NextRange(ctx, p.scoped(p.db), p.cols, lo, size)
}

func (p *pipeline[M, P]) Count(ctx context.Context) (int64, bool, error) {
	return keyset.Count(ctx, p.scoped(p.db), p.table, 3*time.Second)
}

func (p *pipeline[M, P]) Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	return dbtx.Within(ctx, p.db, tx, func(tx *gorm.DB) (store.Result, error) {
		return p.process(ctx, tx, lo, hi)
	})
}

func (p *pipeline[M, P]) process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	loK, err := keyset.Decode(lo)
	if err != nil {
		return store.Result{}, err
	}
	hiK, err := keyset.Decode(hi)
	if err != nil {
		return store.Result{}, err
	}
	tx = tx.WithContext(ctx)
	if p.job.d.ProcessRange != nil {
		return p.processRange(ctx, tx, loK, hiK)
	}
	query := func() *gorm.DB { return keyset.Range(p.scoped(tx), p.cols, loK, hiK) }
	records, err := p.scanner.load(query(), query)
	if err != nil {
		return store.Result{}, fmt.Errorf("load records: %w", err)
	}
	res := store.Result{RowsRead: int64(len(records))}
	if p.job.d.ProcessBatch != nil {
		var written, skipped int64
		var reported bool
		b := &Batch[M, P]{
			Records: records, Params: p.params, DB: tx,
			ctx: ctx, orig: slices.Clone(records), w: p.writer, bounds: p.bounds(loK, hiK),
			written: &written, skipped: &skipped, reported: &reported,
		}
		if err := p.job.d.ProcessBatch(ctx, b); err != nil {
			return store.Result{}, err
		}
		if !reported {
			written = max(int64(len(records))-skipped, 0)
		}
		res.RowsWritten, res.RowsSkipped = written, skipped
		return res, nil
	}
	for i := range records {
		if err := ctx.Err(); err != nil {
			return store.Result{}, err
		}
		err := p.job.d.ProcessElement(ctx, &Element[M, P]{Record: &records[i], Params: p.params, DB: tx})
		switch {
		case errors.Is(err, ErrSkip):
			res.RowsSkipped++
		case err != nil:
			// Name the record by its key, which finds it in the table; its
			// place in the batch says nothing to the reader.
			key := reflect.ValueOf(&records[i]).Elem().FieldByName(p.pk).Interface()
			return store.Result{}, fmt.Errorf("record %s=%v: %w", p.pkCol, key, err)
		default:
			res.RowsWritten++
		}
	}
	return res, nil
}

// bounds returns the batch's range as Save restricts its statement to, when
// the batch's key is the model's one-column primary key: [lo, hi], or [hi]
// for the first batch.
func (p *pipeline[M, P]) bounds(lo, hi keyset.Key) []any {
	w := p.writer
	if len(p.cols) != 1 || len(w.keys) != 1 || p.cols[0].Name != w.keys[0].DBName || hi == nil {
		return nil
	}
	if lo == nil {
		return []any{hi[0]}
	}
	return []any{lo[0], hi[0]}
}

// processRange runs ProcessRange over the batch's range: its conditions
// without keyset.Range's order, which an UPDATE or DELETE does not take.
func (p *pipeline[M, P]) processRange(ctx context.Context, tx *gorm.DB, lo, hi keyset.Key) (store.Result, error) {
	r := &Range[M, P]{Params: p.params, DB: tx}
	r.query = func() *gorm.DB {
		q := p.scoped(tx.Session(&gorm.Session{NewDB: true}))
		if e := keyset.After(p.cols, lo); e != nil {
			q = q.Where(e)
		}
		if e := keyset.AtMost(p.cols, hi); e != nil {
			q = q.Where(e)
		}
		return q
	}
	if err := p.job.d.ProcessRange(ctx, r); err != nil {
		return store.Result{}, err
	}
	return store.Result{RowsRead: r.written + r.skipped, RowsWritten: r.written, RowsSkipped: r.skipped}, nil
}
