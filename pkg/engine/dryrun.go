package engine

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// Dry-run limits.
const (
	// DryRunBatchesDefault is how many batches a dry run tries unless told.
	DryRunBatchesDefault = 3
	// DryRunBatchesMax bounds a dry run's batches: each holds its rows'
	// locks until it is rolled back.
	DryRunBatchesMax = 20
	// DryRunSampleRows is how many rows of a batch a dry run shows before
	// and after.
	DryRunSampleRows = 5
)

// ErrDryRunUnsupported means a definition's writes cannot be rolled back
// (a sink outside the database, a source whose reads move a position), so a
// dry run is refused rather than pretended.
var ErrDryRunUnsupported = errors.New("dry run not possible")

// ErrDryRunCommit is the error a definition's code gets when, during a dry
// run, it commits the transaction it was given or runs a statement that
// would end it (COMMIT, BEGIN, ROLLBACK, and on MySQL statements that commit
// implicitly, such as DDL).
var ErrDryRunCommit = errors.New("a dry run's transaction cannot be committed")

// DryRunChecker is implemented by pipelines that can say whether a dry run
// of theirs stays inside the transaction Process is given. A pipeline that
// does not implement it is refused a dry run.
type DryRunChecker interface {
	// DryRunCheck returns nil when every write of Process goes through its
	// transaction on WritesTo, else an error matching
	// ErrDryRunUnsupported that says why.
	DryRunCheck() error
}

// Sampler is implemented by pipelines whose records are rows of one table,
// so a dry run can show a few of them before and after the batch.
type Sampler interface {
	// SampleKeys returns up to limit keys of the records Process handles
	// in (lo, hi], read in tx, in key order.
	SampleKeys(ctx context.Context, tx *gorm.DB, lo, hi string, limit int) ([]any, error)
	// ReadRows returns the table's rows whose key is one of keys, whatever
	// the scope, as column → value, by the key's text (fmt.Sprint).
	ReadRows(ctx context.Context, tx *gorm.DB, keys []any) (map[string]map[string]any, error)
}

// DryRunOptions say what a dry run tries.
type DryRunOptions struct {
	// Batches is how many batches to try (default DryRunBatchesDefault).
	Batches int
	// BatchSize is the run's batch size.
	BatchSize int
	// Watermark is an incremental flow's watermark (where its run starts).
	Watermark string
	// SampleRows is how many rows of a batch to show (default
	// DryRunSampleRows; negative: none).
	SampleRows int
}

// DryRunReport is what a dry run found.
type DryRunReport struct {
	Batches []DryRunBatch
	// More says the run would plan batches after these.
	More bool
	// Sampled says the pipeline can show rows before and after.
	Sampled bool
}

// DryRunBatch is one batch of a dry run: what it would have done, rolled
// back.
type DryRunBatch struct {
	Seq    int64
	Lo, Hi string
	// Result counts the rows the batch read, would have written (changed)
	// and skipped.
	Result store.Result
	// Sample shows a few of the batch's rows before and after.
	Sample []RowChange
	// Error is why the batch failed (its changes were rolled back too).
	Error string
	// Leaked says rows of the sample were found changed after the
	// rollback: the definition wrote through a connection of its own,
	// outside the transaction it was given (or something else changed them
	// meanwhile).
	Leaked bool
}

// RowChange is one row before and after a dry run's batch.
type RowChange struct {
	Key    string
	Before map[string]any
	// After is nil when the batch deleted the row.
	After   map[string]any
	Changed []string
}

// DryRun tries the first opts.Batches batches a run of pipe would plan
// (the same key ranges, in order), each in a transaction on pipe.WritesTo()
// that is rolled back, and reports what each would change. It creates no
// run and writes no checkpoint. A pipeline that cannot be dry-run is an
// error matching ErrDryRunUnsupported, and nothing is tried.
//
// Code that writes through a connection of its own, not the transaction it
// is given, cannot be rolled back: where a sampled row shows it, the batch
// is marked Leaked. Committing the given transaction, or a statement that
// would end it, fails the batch with ErrDryRunCommit.
func DryRun(ctx context.Context, pipe Pipeline, opts DryRunOptions) (DryRunReport, error) {
	var rep DryRunReport
	c, ok := pipe.(DryRunChecker)
	if !ok {
		return rep, fmt.Errorf("%w: this kind of definition does not say that its writes stay in a database transaction", ErrDryRunUnsupported)
	}
	if err := c.DryRunCheck(); err != nil {
		return rep, err
	}
	db := pipe.WritesTo()
	if db == nil {
		return rep, fmt.Errorf("%w: the definition writes outside a database", ErrDryRunUnsupported)
	}
	if opts.Batches <= 0 {
		opts.Batches = DryRunBatchesDefault
	}
	if opts.SampleRows == 0 {
		opts.SampleRows = DryRunSampleRows
	}
	if opts.BatchSize <= 0 {
		return rep, fmt.Errorf("dry run: batch size must be positive, got %d", opts.BatchSize)
	}
	sampler, _ := pipe.(Sampler)
	if opts.SampleRows < 0 {
		sampler = nil
	}
	rep.Sampled = sampler != nil
	lo := pipe.Start(opts.Watermark)
	for seq := int64(1); seq <= int64(opts.Batches); seq++ {
		hi, more, ok, err := pipe.Next(ctx, lo, opts.BatchSize)
		if err != nil {
			return rep, fmt.Errorf("dry run: plan batch %d: %w", seq, err)
		}
		if !ok {
			break
		}
		b := dryBatch(ctx, pipe, db, sampler, store.Batch{Seq: seq, Lo: lo, Hi: hi}, opts.SampleRows)
		rep.Batches = append(rep.Batches, b)
		lo = hi
		rep.More = more
		if !more || ctx.Err() != nil {
			break
		}
	}
	return rep, ctx.Err()
}

// dryBatch runs one batch in a guarded transaction and rolls it back.
func dryBatch(ctx context.Context, pipe Pipeline, db *gorm.DB, sampler Sampler, b store.Batch, sample int) DryRunBatch {
	out := DryRunBatch{Seq: b.Seq, Lo: b.Lo, Hi: b.Hi}
	sqlDB, err := db.DB()
	if err != nil {
		out.Error = fmt.Sprintf("open transaction: %v", err)
		return out
	}
	rawTx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		out.Error = fmt.Sprintf("open transaction: %v", err)
		return out
	}
	guard := &dryTx{tx: rawTx, db: sqlDB, mysql: db.Dialector.Name() == "mysql"}
	// The transaction as gorm's Begin makes one, with the guard in place of
	// the *sql.Tx: nested Transaction calls become savepoints in it.
	tx := db.Session(&gorm.Session{NewDB: true, Context: ctx})
	tx.Statement.ConnPool = guard
	defer rawTx.Rollback() //nolint:errcheck // rolled back below; this is for a panic

	var keys []any
	before := map[string]map[string]any{}
	if sampler != nil {
		if keys, err = sampler.SampleKeys(ctx, tx, b.Lo, b.Hi, sample); err == nil {
			before, err = sampler.ReadRows(ctx, tx, keys)
		}
		if err != nil {
			out.Error = fmt.Sprintf("read sample: %v", err)
			return out
		}
	}
	start := time.Now()
	res, perr := safeDryProcess(ctx, pipe, tx, b)
	res.Duration = time.Since(start)
	out.Result = res
	if guard.refused != nil && (perr == nil || !errors.Is(perr, ErrDryRunCommit)) {
		perr = errors.Join(perr, guard.refused)
	}
	if perr != nil {
		out.Error = perr.Error()
	} else if sampler != nil && len(keys) > 0 {
		after, err := sampler.ReadRows(ctx, tx, keys)
		if err != nil {
			out.Error = fmt.Sprintf("read sample after the batch: %v", err)
		} else {
			out.Sample = changes(keys, before, after)
		}
	}
	if err := rawTx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		out.Error = strings.TrimPrefix(out.Error+"; ", "; ") + fmt.Sprintf("roll back: %v", err)
	}
	// Rows the definition changed through a connection of its own are
	// still changed now: compare the sample with what it was.
	if sampler != nil && len(keys) > 0 {
		now, err := sampler.ReadRows(context.WithoutCancel(ctx), db.WithContext(context.WithoutCancel(ctx)), keys)
		if err == nil && len(changes(keys, before, now)) > 0 {
			out.Leaked = true
			msg := "rows were changed outside the dry run's transaction, and stay changed: the definition writes through a database handle of its own instead of the transaction it is given (or something else changed them meanwhile)"
			out.Error = strings.TrimPrefix(out.Error+"; ", "; ") + msg
		}
	}
	return out
}

func safeDryProcess(ctx context.Context, pipe Pipeline, tx *gorm.DB, b store.Batch) (res store.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	if bp, ok := pipe.(BatchProcessor); ok {
		return bp.ProcessBatch(ctx, tx, b)
	}
	return pipe.Process(ctx, tx, b.Lo, b.Hi)
}

// changes lists the sampled rows that differ, in the keys' order.
func changes(keys []any, before, after map[string]map[string]any) []RowChange {
	var out []RowChange
	for _, k := range keys {
		key := fmt.Sprint(k)
		b, a := before[key], after[key]
		if b == nil && a == nil {
			continue
		}
		rc := RowChange{Key: key, Before: b, After: a}
		cols := map[string]bool{}
		for c := range b {
			cols[c] = true
		}
		for c := range a {
			cols[c] = true
		}
		for c := range cols {
			bv, bok := b[c]
			av, aok := a[c]
			if bok != aok || !sameValue(bv, av) {
				rc.Changed = append(rc.Changed, c)
			}
		}
		if len(rc.Changed) == 0 && (a == nil) == (b == nil) {
			continue
		}
		sort.Strings(rc.Changed)
		out = append(out, rc)
	}
	return out
}

func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b) || fmt.Sprint(a) == fmt.Sprint(b)
}

// NormalizeRow turns a row read by gorm into values that print and compare
// well ([]byte as text).
func NormalizeRow(row map[string]any) map[string]any {
	for k, v := range row {
		switch x := v.(type) {
		case []byte:
			row[k] = string(x)
		case *any:
			if x != nil {
				row[k] = *x
			}
		}
	}
	return row
}

// dryTx is the transaction a dry run hands the definition: every statement
// goes to tx, but committing it, or a statement that would end it, is
// refused with ErrDryRunCommit.
type dryTx struct {
	tx      *sql.Tx
	db      *sql.DB
	mysql   bool
	refused error
}

var (
	_ gorm.ConnPool       = (*dryTx)(nil)
	_ gorm.TxCommitter    = (*dryTx)(nil)
	_ gorm.GetDBConnector = (*dryTx)(nil)
)

func (g *dryTx) check(q string) error {
	s := strings.TrimLeft(q, " \t\r\n(;")
	word, rest, _ := strings.Cut(strings.ToUpper(s), " ")
	word = strings.TrimRight(word, ";")
	rest = strings.TrimSpace(rest)
	bad := false
	switch word {
	case "COMMIT", "END", "BEGIN", "ABORT":
		bad = true
	case "START":
		bad = strings.HasPrefix(rest, "TRANSACTION")
	case "ROLLBACK":
		bad = !strings.HasPrefix(rest, "TO")
	case "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "LOCK", "UNLOCK", "GRANT", "REVOKE":
		// MySQL commits the transaction before these.
		bad = g.mysql && !(word == "CREATE" && strings.HasPrefix(rest, "TEMPORARY")) && !(word == "DROP" && strings.HasPrefix(rest, "TEMPORARY"))
	}
	if !bad {
		return nil
	}
	err := fmt.Errorf("%w: the definition ran %q", ErrDryRunCommit, strings.Fields(s)[0])
	if g.refused == nil {
		g.refused = err
	}
	return err
}

func (g *dryTx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	if err := g.check(q); err != nil {
		return nil, err
	}
	return g.tx.PrepareContext(ctx, q)
}

func (g *dryTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := g.check(q); err != nil {
		return nil, err
	}
	return g.tx.ExecContext(ctx, q, args...)
}

func (g *dryTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := g.check(q); err != nil {
		return nil, err
	}
	return g.tx.QueryContext(ctx, q, args...)
}

func (g *dryTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if err := g.check(q); err != nil {
		// A *sql.Row cannot be made with an error of ours: one whose
		// context is done carries context.Canceled; g.refused says why.
		done, cancel := context.WithCancel(ctx)
		cancel()
		return g.tx.QueryRowContext(done, "SELECT 1")
	}
	return g.tx.QueryRowContext(ctx, q, args...)
}

// Commit refuses: a dry run's transaction is only ever rolled back.
func (g *dryTx) Commit() error {
	err := fmt.Errorf("%w: the definition called Commit", ErrDryRunCommit)
	if g.refused == nil {
		g.refused = err
	}
	return err
}

// Rollback rolls the transaction back (the dry run would anyway).
func (g *dryTx) Rollback() error { return g.tx.Rollback() }

// GetDBConn returns the database, as gorm's DB does for a transaction.
func (g *dryTx) GetDBConn() (*sql.DB, error) { return g.db, nil }
