package sqlconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/keyset"
)

// Name is the connector's registered name.
const Name = "sql"

func init() {
	flows.RegisterSource(Name, func(settings json.RawMessage) (flows.Source, error) {
		var s Source
		dec := json.NewDecoder(bytes.NewReader(settings))
		// Args must come back as the integers they were, not as float64
		// (which rounds ids beyond 2^53).
		dec.UseNumber()
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("sql source settings: %w", err)
		}
		for i, a := range s.Args {
			s.Args[i] = fromJSON(a)
		}
		return &s, s.validate()
	})
	flows.RegisterSink(Name, func(settings json.RawMessage) (flows.Sink, error) {
		var s Sink
		if err := json.Unmarshal(settings, &s); err != nil {
			return nil, fmt.Errorf("sql sink settings: %w", err)
		}
		return &s, s.validate()
	})
}

// fromJSON turns the json.Numbers of a decoded value into int64 or float64.
func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
	}
	return v
}

// Source reads rows of a table.
type Source struct {
	// Table to read.
	Table string `json:"table"`
	// Columns to read; default all.
	Columns []string `json:"columns,omitempty"`
	// Where and Args narrow the rows (a SQL condition with ? placeholders),
	// applied when planning and again inside each batch's range.
	Where string `json:"where,omitempty"`
	Args  []any  `json:"args,omitempty"`
	// Key is the column to batch by in a full run; default "id".
	Key string `json:"key,omitempty"`
	// Cursor, when set, makes the source incremental: batches follow these
	// columns (e.g. ["updated_at", "id"]; the last must be unique, all NOT
	// NULL) from the flow's watermark.
	Cursor []string `json:"cursor,omitempty"`
}

var _ flows.Source = (*Source)(nil)

func (s *Source) validate() error {
	if s.Table == "" {
		return errors.New("sql source: Table is required")
	}
	if len(s.Cursor) > 2 {
		return errors.New("sql source: Cursor takes at most two columns")
	}
	return nil
}

// Connector implements flows.Source.
func (s *Source) Connector() string { return Name }

// Incremental implements flows.Source.
func (s *Source) Incremental() bool { return len(s.Cursor) > 0 }

func (s *Source) cols() []keyset.Column {
	if len(s.Cursor) > 0 {
		return keyset.Cols(s.Cursor...)
	}
	if s.Key != "" {
		return keyset.Cols(s.Key)
	}
	return keyset.Cols("id")
}

func (s *Source) query(db *gorm.DB) *gorm.DB {
	q := db.Table(s.Table)
	if s.Where != "" {
		q = q.Where(s.Where, s.Args...)
	}
	return q
}

// Next implements flows.Source.
func (s *Source) Next(ctx context.Context, db *gorm.DB, lo string, size int) (string, bool, bool, error) {
	if err := s.validate(); err != nil {
		return "", false, false, err
	}
	return engine.NextRange(ctx, s.query(db), s.cols(), lo, size)
}

// Count implements flows.Source.
func (s *Source) Count(ctx context.Context, db *gorm.DB) (int64, bool, error) {
	return keyset.Count(ctx, s.query(db), s.Table, 3*time.Second)
}

// Read implements flows.Source.
func (s *Source) Read(ctx context.Context, db *gorm.DB, lo, hi string) ([]flows.Record, error) {
	loK, err := keyset.Decode(lo)
	if err != nil {
		return nil, err
	}
	hiK, err := keyset.Decode(hi)
	if err != nil {
		return nil, err
	}
	q := s.query(db.WithContext(ctx))
	if len(s.Columns) > 0 {
		q = q.Select(s.Columns)
	}
	var rows []map[string]any
	if err := keyset.Range(q, s.cols(), loK, hiK).Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		for k, v := range r {
			if b, ok := v.([]byte); ok {
				r[k] = string(b)
			}
		}
	}
	return rows, nil
}
