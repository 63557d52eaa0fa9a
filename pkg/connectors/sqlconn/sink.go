package sqlconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/flows"
)

// Mode is how a Sink writes.
type Mode string

// Sink modes.
const (
	// Insert inserts records; with Key set, a record whose key exists is
	// left alone (idempotent).
	Insert Mode = "insert"
	// Upsert inserts records or updates the row with the same Key
	// (idempotent).
	Upsert Mode = "upsert"
)

// Sink writes records into a table.
type Sink struct {
	Table string `json:"table"`
	Mode  Mode   `json:"mode"`
	// Key is the unique key that makes writes idempotent (required for
	// Upsert); the table needs a unique index on it.
	Key []string `json:"key,omitempty"`
	// ChunkSize caps the rows per INSERT statement; default 500.
	ChunkSize int `json:"chunk_size,omitempty"`
}

var _ flows.Sink = (*Sink)(nil)

func (s *Sink) validate() error {
	switch {
	case s.Table == "":
		return errors.New("sql sink: Table is required")
	case s.Mode != Insert && s.Mode != Upsert:
		return fmt.Errorf("sql sink: Mode must be %q or %q, got %q", Insert, Upsert, s.Mode)
	case s.Mode == Upsert && len(s.Key) == 0:
		return errors.New("sql sink: Upsert needs Key")
	}
	return nil
}

// Connector implements flows.Sink.
func (s *Sink) Connector() string { return Name }

// Write implements flows.Sink.
func (s *Sink) Write(ctx context.Context, db *gorm.DB, records []flows.Record) (int64, error) {
	if err := s.validate(); err != nil {
		return 0, err
	}
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
	// Every row gets every column so one statement can carry them all.
	rows := make([]map[string]any, len(records))
	for i, r := range records {
		row := make(map[string]any, len(cols))
		for _, c := range cols {
			row[c] = r[c]
		}
		rows[i] = row
	}
	q := db.WithContext(ctx).Table(s.Table)
	if len(s.Key) > 0 {
		oc := clause.OnConflict{}
		for _, k := range s.Key {
			oc.Columns = append(oc.Columns, clause.Column{Name: k})
		}
		if s.Mode == Upsert {
			var update []string
			for _, c := range cols {
				if !slices.Contains(s.Key, c) {
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
		if oc.DoNothing && db.Dialector.Name() == "mysql" {
			// MySQL has no DO NOTHING, and gorm only rewrites it into a
			// no-op update for a model, not for a table of maps: assign the
			// key to itself.
			oc.DoNothing = false
			oc.DoUpdates = []clause.Assignment{{Column: clause.Column{Name: s.Key[0]}, Value: clause.Column{Name: s.Key[0]}}}
		}
		q = q.Clauses(oc)
	}
	chunk := s.ChunkSize
	if chunk <= 0 {
		chunk = 500
	}
	if err := q.CreateInBatches(rows, chunk).Error; err != nil {
		return 0, fmt.Errorf("write %d rows to %s: %w", len(rows), s.Table, err)
	}
	return int64(len(rows)), nil
}
