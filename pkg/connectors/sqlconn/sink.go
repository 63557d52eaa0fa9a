package sqlconn

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Mode is how a Sink writes a record.
type Mode string

const (
	// Insert adds rows; with a Key, a row whose key exists is left as it is
	// (so a redelivered batch changes nothing).
	Insert Mode = "insert"
	// Upsert inserts rows, or updates the row with the same Key.
	Upsert Mode = "upsert"
	// Update updates the row with the same Key and inserts nothing; a
	// record whose row does not exist is skipped.
	Update Mode = "update"
)

// DefaultChunkSize is how many rows a Sink writes per statement unless its
// ChunkSize says otherwise.
const DefaultChunkSize = 500

// Sink is the configuration of a sink that writes records into a table, or
// into a registered gorm model's table.
type Sink struct {
	// Connection names the database (DRIPFLOW_CONNECTIONS); empty or
	// "default" is the application database.
	Connection string `json:"connection,omitempty" help:"named connection; empty means the application database"`
	// Table to write; or Model, not both.
	Table string `json:"table,omitempty" help:"table to write (or model)"`
	Model string `json:"model,omitempty" help:"gorm model registered with sqlconn.RegisterModel (or table)"`
	// Mode: insert, upsert or update.
	Mode Mode `json:"mode" help:"insert, upsert or update"`
	// Key is the unique key columns: required for upsert and update; with
	// insert, rows whose key exists are skipped.
	Key []string `json:"key,omitempty" help:"unique key columns (required for upsert and update)"`
	// ChunkSize is how many rows one statement writes; default 500.
	ChunkSize int `json:"chunk_size,omitempty" help:"rows per statement; default 500"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	switch {
	case s.Table == "" && s.Model == "":
		return flows.Errorf("table", "is required (or model)")
	case s.Table != "" && s.Model != "":
		return flows.Errorf("model", "give table or model, not both")
	case s.Table != "" && !identifier(s.Table):
		// A table is a name, never SQL: specs come from the API too.
		return flows.Errorf("table", "%q is not a table name (letters, digits and _, optionally schema.table)", s.Table)
	case s.Mode != Insert && s.Mode != Upsert && s.Mode != Update:
		return flows.Errorf("mode", "must be %q, %q or %q, got %q", Insert, Upsert, Update, s.Mode)
	case (s.Mode == Upsert || s.Mode == Update) && len(s.Key) == 0:
		return flows.Errorf("key", "is required for mode %s", s.Mode)
	case s.ChunkSize < 0:
		return flows.Errorf("chunk_size", "must not be negative")
	}
	for _, k := range s.Key {
		if !identifier(k) {
			return flows.Errorf("key", "%q is not a column name", k)
		}
	}
	if s.Model != "" {
		if _, ok := lookupModel(s.Model); !ok {
			return flows.Errorf("model", "%q is not registered (sqlconn.RegisterModel)", s.Model)
		}
	}
	return nil
}

// Guarantee implements flows.SinkConfig: outside the store's transaction,
// upsert, update and keyed insert are idempotent.
func (s *Sink) Guarantee() flows.Guarantee {
	if s.Mode == Insert && len(s.Key) == 0 {
		return flows.AtLeastOnce
	}
	return flows.Idempotent
}

// CanJoinTransaction reports whether the sink writes the application
// database, whose batches commit with their checkpoint when the store is the
// SQL store there.
func (s *Sink) CanJoinTransaction() bool { return isDefault(s.Connection) }

// Build implements flows.SinkConfig.
func (s *Sink) Build(ctx context.Context, res *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	db, err := open(ctx, res, s.Connection)
	if err != nil {
		return nil, err
	}
	out := &sink{cfg: *s, db: db, table: s.Table}
	if s.Model != "" {
		m, _ := lookupModel(s.Model)
		if out.table, err = tableOf(db, m); err != nil {
			return nil, fmt.Errorf("model %s: %w", s.Model, err)
		}
	}
	if out.cfg.ChunkSize == 0 {
		out.cfg.ChunkSize = DefaultChunkSize
	}
	return out, nil
}

// sink is a built Sink.
type sink struct {
	cfg   Sink
	db    *gorm.DB
	table string
}

var _ flows.TxSink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return s.cfg.Guarantee() }
func (s *sink) DB() *gorm.DB               { return s.db }
func (s *sink) Close() error               { return nil }

// Write writes the batch in a transaction of its own.
func (s *sink) Write(ctx context.Context, b *flows.Batch) (n int64, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		n, err = s.WriteTx(ctx, tx, b)
		return err
	})
	return n, err
}

// WriteTx writes the batch in tx.
func (s *sink) WriteTx(ctx context.Context, tx *gorm.DB, b *flows.Batch) (int64, error) {
	records := b.Records
	if len(records) == 0 {
		return 0, nil
	}
	colSet := map[string]bool{}
	for _, r := range records {
		for k := range r {
			colSet[k] = true
		}
	}
	cols := make([]string, 0, len(colSet))
	for k := range colSet {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	if s.cfg.Mode == Update {
		return s.update(ctx, tx, cols, records)
	}
	rows := make([]map[string]any, len(records))
	for i, r := range records {
		row := make(map[string]any, len(cols))
		for _, c := range cols {
			row[c] = r[c]
		}
		rows[i] = row
	}
	q := tx.WithContext(ctx).Table(s.table)
	if len(s.cfg.Key) > 0 {
		oc := clause.OnConflict{}
		for _, k := range s.cfg.Key {
			oc.Columns = append(oc.Columns, clause.Column{Name: k})
		}
		if s.cfg.Mode == Upsert {
			var update []string
			for _, c := range cols {
				if !slices.Contains(s.cfg.Key, c) {
					update = append(update, c)
				}
			}
			if len(update) == 0 {
				oc.DoNothing = true
			} else {
				oc.DoUpdates = clause.AssignmentColumns(update)
			}
		} else {
			oc.DoNothing = true
		}
		if oc.DoNothing && tx.Dialector.Name() == "mysql" {
			// MySQL has no DO NOTHING: assigning the key to itself is one.
			oc.DoNothing = false
			oc.DoUpdates = []clause.Assignment{{Column: clause.Column{Name: s.cfg.Key[0]}, Value: clause.Column{Name: s.cfg.Key[0]}}}
		}
		q = q.Clauses(oc)
	}
	if err := q.CreateInBatches(rows, s.cfg.ChunkSize).Error; err != nil {
		return 0, fmt.Errorf("write %d rows to %s: %w", len(rows), s.table, err)
	}
	return int64(len(rows)), nil
}

// update updates each record's row by key; records without a row are
// skipped (not counted as written).
func (s *sink) update(ctx context.Context, tx *gorm.DB, cols []string, records []flows.Record) (int64, error) {
	var n int64
	for i, r := range records {
		set := map[string]any{}
		for _, c := range cols {
			if !slices.Contains(s.cfg.Key, c) {
				if v, ok := r[c]; ok {
					set[c] = v
				}
			}
		}
		q := tx.WithContext(ctx).Table(s.table)
		for _, k := range s.cfg.Key {
			v, ok := r[k]
			if !ok || v == nil {
				return n, fmt.Errorf("update %s: record %d has no key %s", s.table, i, k)
			}
			q = q.Where(clause.Eq{Column: clause.Column{Name: k}, Value: v})
		}
		if len(set) == 0 {
			continue
		}
		res := q.Updates(set)
		if res.Error != nil {
			return n, fmt.Errorf("update %s: %w", s.table, res.Error)
		}
		n += res.RowsAffected
	}
	return n, nil
}
