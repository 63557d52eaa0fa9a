// Package keyset plans and reads key ranges over a gorm query: the batch
// boundaries of a run (lazy keyset pagination, never OFFSET over the table)
// and the rows of one half-open range (lo, hi].
//
// A key is one column (integer, string, UUID or time) or, for incremental
// flows, two (such as updated_at, id). Keys are encoded as JSON arrays —
// `[42]`, `["2026-11-01T10:00:00Z",42]` — so the store can keep them as
// opaque strings and the UI can show them.
package keyset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Column is one key column.
type Column struct {
	Name string
}

// Cols names key columns.
func Cols(names ...string) []Column {
	out := make([]Column, len(names))
	for i, n := range names {
		out[i] = Column{Name: n}
	}
	return out
}

// Key is the values of a key's columns, in column order: int64, string (also
// for UUIDs) or time.Time.
type Key []any

// PrimaryKey returns the primary key column of model on db.
func PrimaryKey(db *gorm.DB, model any) ([]Column, error) {
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(model); err != nil {
		return nil, fmt.Errorf("parse model %T: %w", model, err)
	}
	// gorm prioritizes "id" within a composite primary key, but batching by
	// a column that is not unique on its own is not keyset pagination.
	if len(stmt.Schema.PrimaryFields) != 1 {
		return nil, fmt.Errorf("model %T has no single primary key; name the key column", model)
	}
	return []Column{{Name: stmt.Schema.PrimaryFields[0].DBName}}, nil
}

// timeKey is how a time value is encoded, so a string key can never be
// mistaken for one.
type timeKey struct {
	T string `json:"t"`
}

// Encode turns a key into its stored form. A nil key encodes to "".
func Encode(k Key) (string, error) {
	if k == nil {
		return "", nil
	}
	out := make([]any, len(k))
	for i, v := range k {
		n, err := normalize(v)
		if err != nil {
			return "", err
		}
		if t, ok := n.(time.Time); ok {
			if y := t.Year(); y < 0 || y > 9999 {
				return "", fmt.Errorf("key time %v is outside years 0000-9999", t)
			}
			n = timeKey{T: t.Format(time.RFC3339Nano)}
		}
		out[i] = n
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// Decode parses a stored key. "" decodes to nil (unbounded).
func Decode(s string) (Key, error) {
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil || len(raw) == 0 ||
		len(bytes.TrimSpace([]byte(s[dec.InputOffset():]))) > 0 {
		return nil, fmt.Errorf("decode key %q: want a JSON array of key values", s)
	}
	k := make(Key, len(raw))
	for i, v := range raw {
		switch v := v.(type) {
		case json.Number:
			x, err := v.Int64()
			if err != nil {
				return nil, fmt.Errorf("decode key %q: %w", s, err)
			}
			k[i] = x
		case string:
			k[i] = v
		case map[string]any:
			str, ok := v["t"].(string)
			if !ok || len(v) != 1 {
				return nil, fmt.Errorf("decode key %q: unknown key value %v", s, v)
			}
			t, err := time.Parse(time.RFC3339Nano, str)
			if err != nil {
				return nil, fmt.Errorf("decode key %q: %w", s, err)
			}
			// Keys are stored in UTC, which must stay a four-digit year.
			if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
				return nil, fmt.Errorf("decode key %q: time %s is outside years 0000-9999 in UTC", s, str)
			}
			k[i] = t
		default:
			return nil, fmt.Errorf("decode key %q: unsupported key value %v", s, v)
		}
	}
	return k, nil
}

// normalize converts a scanned or user value to int64, string or UTC
// time.Time.
func normalize(v any) (any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, errors.New("key value is NULL")
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil, errors.New("key value is NULL")
	}
	switch x := rv.Interface().(type) {
	case time.Time:
		return x.UTC(), nil
	case []byte:
		return string(x), nil
	case fmt.Stringer:
		if rv.Kind() == reflect.Array { // UUID types
			return x.String(), nil
		}
	}
	switch {
	case rv.Kind() >= reflect.Int && rv.Kind() <= reflect.Int64:
		return rv.Int(), nil
	case rv.Kind() >= reflect.Uint && rv.Kind() <= reflect.Uintptr:
		if rv.Uint() > math.MaxInt64 {
			return nil, fmt.Errorf("key value %d does not fit a signed 64-bit integer", rv.Uint())
		}
		return int64(rv.Uint()), nil
	case rv.Kind() == reflect.String:
		return rv.String(), nil
	case rv.Kind() == reflect.Array && rv.Len() == 16 && rv.Type().Elem().Kind() == reflect.Uint8:
		var b [16]byte
		reflect.Copy(reflect.ValueOf(&b).Elem(), rv)
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
	}
	return nil, fmt.Errorf("unsupported key value %T", v)
}

func column(c Column) clause.Column {
	return clause.Column{Table: clause.CurrentTable, Name: c.Name}
}

// After is the condition "key > lo"; nil lo means no condition.
func After(cols []Column, lo Key) clause.Expression {
	if lo == nil {
		return nil
	}
	return compare(cols, lo, false)
}

// AtMost is the condition "key <= hi"; nil hi means no condition.
func AtMost(cols []Column, hi Key) clause.Expression {
	if hi == nil {
		return nil
	}
	return compare(cols, hi, true)
}

// compare expands tuple comparison so every dialect can use the index:
// (a, b) > (x, y)  ⇔  a > x OR (a = x AND b > y).
func compare(cols []Column, k Key, atMost bool) clause.Expression {
	strict := func(c Column, v any) clause.Expression {
		if atMost {
			return clause.Lt{Column: column(c), Value: v}
		}
		return clause.Gt{Column: column(c), Value: v}
	}
	last := func(c Column, v any) clause.Expression {
		if atMost {
			return clause.Lte{Column: column(c), Value: v}
		}
		return clause.Gt{Column: column(c), Value: v}
	}
	if len(cols) == 1 {
		return last(cols[0], k[0])
	}
	return clause.Or(
		strict(cols[0], k[0]),
		clause.And(clause.Eq{Column: column(cols[0]), Value: k[0]}, last(cols[1], k[1])),
	)
}

// Range restricts q to keys in (lo, hi] and orders it by key.
func Range(q *gorm.DB, cols []Column, lo, hi Key) *gorm.DB {
	if e := After(cols, lo); e != nil {
		q = q.Where(e)
	}
	if e := AtMost(cols, hi); e != nil {
		q = q.Where(e)
	}
	return order(q, cols, false)
}

// order orders q by key, replacing any order the scope set: keyset
// boundaries only hold in key order.
func order(q *gorm.DB, cols []Column, desc bool) *gorm.DB {
	by := clause.OrderBy{}
	for i, c := range cols {
		by.Columns = append(by.Columns, clause.OrderByColumn{Column: column(c), Desc: desc, Reorder: i == 0})
	}
	return q.Clauses(by)
}

func selectKey(q *gorm.DB, cols []Column) *gorm.DB {
	sel := clause.Select{}
	for _, c := range cols {
		sel.Columns = append(sel.Columns, column(c))
	}
	return q.Clauses(sel)
}

// scanOne runs q (which selects the key columns) and returns the first key,
// or nil when there is none.
func scanOne(q *gorm.DB, cols []Column) (Key, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	dest := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	k := make(Key, len(cols))
	for i, c := range cols {
		v, err := normalize(dest[i])
		if err != nil {
			return nil, fmt.Errorf("key column %s: %w", c.Name, err)
		}
		k[i] = v
	}
	return k, rows.Err()
}

// ErrNoRows means the scope has no key after the given bound.
var ErrNoRows = errors.New("no rows after bound")

// Next finds the upper bound of the batch of at most size keys that follows
// lo in q (q must be a query over the model, with its scope applied). It
// returns the batch's hi and whether the batch is full; a batch that is not
// full is the last one, bounded by the greatest key. ErrNoRows when nothing
// follows lo.
//
// The cost is one index walk of size entries (LIMIT 1 OFFSET size-1 after
// lo), whatever the table's size.
func Next(ctx context.Context, q *gorm.DB, cols []Column, lo Key, size int) (hi Key, full bool, err error) {
	if size < 1 {
		return nil, false, fmt.Errorf("batch size %d must be positive", size)
	}
	base := q.WithContext(ctx).Session(&gorm.Session{})
	sub := base
	if e := After(cols, lo); e != nil {
		sub = sub.Where(e)
	}
	hi, err = scanOne(order(selectKey(sub, cols), cols, false).Offset(size-1).Limit(1), cols)
	if err != nil {
		return nil, false, fmt.Errorf("find batch boundary: %w", err)
	}
	if hi != nil {
		return hi, true, nil
	}
	sub = base
	if e := After(cols, lo); e != nil {
		sub = sub.Where(e)
	}
	hi, err = scanOne(order(selectKey(sub, cols), cols, true).Limit(1), cols)
	if err != nil {
		return nil, false, fmt.Errorf("find last key: %w", err)
	}
	if hi == nil {
		return nil, false, ErrNoRows
	}
	return hi, false, nil
}
