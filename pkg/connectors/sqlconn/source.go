package sqlconn

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/keyset"
)

// Source is the configuration of a source that reads a table, or a
// registered gorm model narrowed by one of its named scopes, by keyset.
type Source struct {
	// Connection names the database (DRIPFLOW_CONNECTIONS); empty or
	// "default" is the application database.
	Connection string `json:"connection,omitempty" help:"named connection; empty means the application database"`
	// Table to read; or Model (and Scope), not both.
	Table string `json:"table,omitempty" help:"table to read (or model)"`
	// Model is a name given to RegisterModel; Scope one of its scopes.
	Model string `json:"model,omitempty" help:"gorm model registered with sqlconn.RegisterModel (or table)"`
	Scope string `json:"scope,omitempty" help:"named scope of the model"`
	// Columns to read; default all.
	Columns []string `json:"columns,omitempty" help:"columns to read; default all"`
	// Where narrows the rows (a gorm condition with ? placeholders filled
	// from Args).
	Where string `json:"where,omitempty" help:"SQL condition with ? placeholders"`
	Args  []any  `json:"args,omitempty" help:"values of the placeholders"`
	// Key is the unique key column a full pass pages by; default "id".
	Key string `json:"key,omitempty" help:"unique key column; default id"`
	// Cursor, when set, makes the source incremental: runs start after the
	// flow's watermark on these columns, e.g. ["updated_at", "id"] (the
	// last must be unique).
	Cursor []string `json:"cursor,omitempty" help:"incremental cursor columns, e.g. updated_at,id"`
}

var _ flows.SourceConfig = (*Source)(nil)

// Kind implements flows.SourceConfig.
func (s *Source) Kind() string { return Kind }

// Validate implements flows.SourceConfig.
func (s *Source) Validate() error {
	switch {
	case s.Table == "" && s.Model == "":
		return flows.Errorf("table", "is required (or model)")
	case s.Table != "" && s.Model != "":
		return flows.Errorf("model", "give table or model, not both")
	case s.Scope != "" && s.Model == "":
		return flows.Errorf("scope", "needs a model")
	case s.Table != "" && !identifier(s.Table):
		// A table is a name, never SQL: specs come from the API too.
		return flows.Errorf("table", "%q is not a table name (letters, digits and _, optionally schema.table)", s.Table)
	case len(s.Cursor) > 2:
		return flows.Errorf("cursor", "takes at most two columns, got %d", len(s.Cursor))
	case s.Where == "" && len(s.Args) > 0:
		return flows.Errorf("args", "given without where")
	}
	// A where without args may hold a literal "?" (a JSON operator, a
	// string); with args, every "?" is a placeholder to gorm.
	if n := strings.Count(s.Where, "?"); len(s.Args) > 0 && n != len(s.Args) {
		return flows.Errorf("args", "where has %d placeholders but %d args are given", n, len(s.Args))
	}
	for i, c := range append(append([]string{s.Key}, s.Cursor...), s.Columns...) {
		if c != "" && !identifier(c) {
			field := "key"
			switch {
			case i > 0 && i <= len(s.Cursor):
				field = "cursor"
			case i > len(s.Cursor):
				field = "columns"
			}
			return flows.Errorf(field, "%q is not a column name", c)
		}
	}
	if s.Model != "" {
		m, ok := lookupModel(s.Model)
		if !ok {
			known := modelNames()
			sort.Strings(known)
			return flows.Errorf("model", "%q is not registered (sqlconn.RegisterModel; known: %s)", s.Model, strings.Join(known, ", "))
		}
		if s.Scope != "" {
			if _, ok := m.scopes[s.Scope]; !ok {
				var known []string
				for k := range m.scopes {
					known = append(known, k)
				}
				sort.Strings(known)
				return flows.Errorf("scope", "model %s has no scope %q (scopes: %s)", s.Model, s.Scope, strings.Join(known, ", "))
			}
		}
	}
	return nil
}

// identifier reports whether c is a plain or dotted column name.
func identifier(c string) bool {
	for i, r := range c {
		switch {
		case r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return c != ""
}

// Build implements flows.SourceConfig.
func (s *Source) Build(ctx context.Context, res *engine.Resources) (flows.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	db, err := open(ctx, res, s.Connection)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: *s, db: db, table: s.Table}
	src.cfg.Args = make([]any, len(s.Args))
	for i, a := range s.Args {
		src.cfg.Args[i] = fromJSON(a)
	}
	if s.Model != "" {
		m, _ := lookupModel(s.Model)
		src.model = m.value
		if s.Scope != "" {
			src.scope = m.scopes[s.Scope]
		}
		if src.table, err = tableOf(db, m); err != nil {
			return nil, fmt.Errorf("model %s: %w", s.Model, err)
		}
	}
	return src, nil
}

// fromJSON turns JSON numbers into int64 (or float64), so integer args keep
// their exact value after a round trip through stored JSON.
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
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = fromJSON(x[i])
		}
		return out
	}
	return v
}

// source is a built Source.
type source struct {
	cfg   Source
	db    *gorm.DB
	table string
	model any
	scope Scope
}

var (
	_ flows.Source  = (*source)(nil)
	_ flows.Counter = (*source)(nil)
)

func (s *source) Shape() flows.Shape { return flows.Keyed }
func (s *source) Resumes() bool      { return len(s.cfg.Cursor) > 0 }
func (s *source) Close() error       { return nil }

func (s *source) cols() []keyset.Column {
	if len(s.cfg.Cursor) > 0 {
		return keyset.Cols(s.cfg.Cursor...)
	}
	if s.cfg.Key != "" {
		return keyset.Cols(s.cfg.Key)
	}
	return keyset.Cols("id")
}

func (s *source) query(ctx context.Context) *gorm.DB {
	q := s.db.WithContext(ctx)
	if s.model != nil {
		q = q.Model(s.model)
		if s.scope != nil {
			q = q.Scopes(s.scope)
		}
	} else {
		q = q.Table(s.table)
	}
	if s.cfg.Where != "" {
		q = q.Where(s.cfg.Where, s.cfg.Args...)
	}
	return q
}

func (s *source) Next(ctx context.Context, lo string, size int) (flows.Split, error) {
	hi, more, ok, err := engine.NextRange(ctx, s.query(ctx), s.cols(), lo, size)
	if err != nil || !ok {
		return flows.Split{}, err
	}
	return flows.Split{Hi: hi, Last: !more}, nil
}

func (s *source) Count(ctx context.Context) (int64, bool, error) {
	return keyset.Count(ctx, s.query(ctx), s.table, 3*time.Second)
}

func (s *source) Read(ctx context.Context, lo, hi string) ([]flows.Record, error) {
	loK, err := keyset.Decode(lo)
	if err != nil {
		return nil, err
	}
	hiK, err := keyset.Decode(hi)
	if err != nil {
		return nil, err
	}
	q := s.query(ctx)
	if len(s.cfg.Columns) > 0 {
		q = q.Select(s.cfg.Columns)
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
