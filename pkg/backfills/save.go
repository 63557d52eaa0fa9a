package backfills

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// maxSaveParams bounds the placeholders of one Save statement, under
// SQLite's 32766 and PostgreSQL's and MySQL's 65535.
const maxSaveParams = 30000

// valuesAlias names the rows a Save statement joins its table with.
const valuesAlias = "dripflow_saved"

// writer writes a batch's changed records back (Batch.Save); one per
// opened pipeline.
type writer[M any] struct {
	schema *schema.Schema
	keys   []*schema.Field // the model's primary key, or the named key column
	key    *schema.Field   // the column Batch.Keys gives
	table  string

	slots map[*schema.Field]fieldSlot // fields read and compared without reflection

	mu      sync.Mutex
	pgTypes map[string]string // PostgreSQL: column → its type, for the casts
}

func newWriter[M any](s *schema.Schema, key *schema.Field) *writer[M] {
	keys := s.PrimaryFields
	if len(keys) == 0 {
		keys = []*schema.Field{key}
	}
	w := &writer[M]{schema: s, keys: keys, key: key, table: s.Table, slots: map[*schema.Field]fieldSlot{}}
	t := reflect.TypeFor[M]()
	for _, f := range s.Fields {
		off, ok := offsetOf(t, f.StructField.Index)
		if !ok || f.Serializer != nil {
			continue
		}
		if k, ok := kindOf(f.FieldType); ok && k != slotDirect {
			w.slots[f] = fieldSlot{offset: off, kind: k, typ: f.FieldType}
		}
	}
	return w
}

// equal reports whether f holds the same value in the records at a and b.
func (w *writer[M]) equal(ctx context.Context, f *schema.Field, a, b *M) bool {
	s, ok := w.slots[f]
	if !ok {
		return equalField(ctx, f, reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
	}
	x, y := unsafe.Add(unsafe.Pointer(a), s.offset), unsafe.Add(unsafe.Pointer(b), s.offset)
	switch s.kind {
	case slotString:
		return *(*string)(x) == *(*string)(y)
	case slotInt, slotInt64, slotUint, slotUint64:
		return *(*uint64)(x) == *(*uint64)(y)
	case slotInt32, slotUint32:
		return *(*uint32)(x) == *(*uint32)(y)
	case slotInt16, slotUint16:
		return *(*uint16)(x) == *(*uint16)(y)
	case slotInt8, slotUint8, slotBool:
		return *(*uint8)(x) == *(*uint8)(y)
	case slotFloat64:
		return *(*float64)(x) == *(*float64)(y)
	case slotFloat32:
		return *(*float32)(x) == *(*float32)(y)
	case slotTime:
		return (*time.Time)(x).Equal(*(*time.Time)(y))
	}
	return equalField(ctx, f, reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
}

// column returns f's values in the records at idx as one PostgreSQL array
// parameter: typed where the field's kind allows (no value boxed).
func (w *writer[M]) column(ctx context.Context, f *schema.Field, records []M, idx []int) any {
	dims := []pgtype.ArrayDimension{{Length: int32(len(idx)), LowerBound: 1}}
	at := func(i int) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(&records[i]), w.slots[f].offset) }
	switch w.slots[f].kind {
	case slotString:
		v := make([]string, len(idx))
		for j, i := range idx {
			v[j] = *(*string)(at(i))
		}
		return pgtype.Array[string]{Elements: v, Dims: dims, Valid: true}
	case slotInt, slotInt64, slotInt32, slotInt16, slotInt8:
		v := make([]int64, len(idx))
		for j, i := range idx {
			v[j] = reflect.NewAt(f.FieldType, at(i)).Elem().Int()
		}
		return pgtype.Array[int64]{Elements: v, Dims: dims, Valid: true}
	case slotFloat64:
		v := make([]float64, len(idx))
		for j, i := range idx {
			v[j] = *(*float64)(at(i))
		}
		return pgtype.Array[float64]{Elements: v, Dims: dims, Valid: true}
	case slotBool:
		v := make([]bool, len(idx))
		for j, i := range idx {
			v[j] = *(*bool)(at(i))
		}
		return pgtype.Array[bool]{Elements: v, Dims: dims, Valid: true}
	case slotTime:
		v := make([]time.Time, len(idx))
		for j, i := range idx {
			v[j] = *(*time.Time)(at(i))
		}
		return pgtype.Array[time.Time]{Elements: v, Dims: dims, Valid: true}
	}
	v := make([]any, len(idx))
	for j, i := range idx {
		v[j], _ = f.ValueOf(ctx, reflect.ValueOf(&records[i]).Elem())
	}
	return pgtype.Array[any]{Elements: v, Dims: dims, Valid: true}
}

// Save writes the named fields of the batch's records back to their rows,
// in the batch's transaction, in one statement for the whole batch rather
// than one per record: UPDATE … FROM (VALUES …) on PostgreSQL and SQLite,
// UPDATE … JOIN on MySQL and MariaDB. Fields are named by Go field or column
// name; the key (the model's primary key) identifies the rows and is not
// written.
//
// A record is written only if one of the named fields differs from the value
// it was loaded with. Assign new values to a record's fields
// (r.Role = &role); a value changed in place through a pointer, slice or map
// the loaded record shares (*r.Role = "admin") is not seen as a change.
// Records must stay in the order they were loaded in, with their keys.
//
// An UpdatedAt field (gorm's autoUpdateTime) not named is set to the current
// time on the records written and in their rows, as gorm's Save would set
// it. The rows the statement changes count as written, as with Wrote, and
// the records left as loaded as skipped; on MySQL, which counts the rows a
// statement changed rather than those it matched, a row already holding the
// values is not counted.
func (b *Batch[M, P]) Save(fields ...string) error {
	if b.w == nil {
		return errors.New("save: the batch has no records loaded")
	}
	n, unchanged, err := b.w.save(b.ctx, b.DB, b.Records, b.orig, fields, b.bounds)
	if err != nil {
		return err
	}
	b.Wrote(n)
	b.Skipped(unchanged)
	return nil
}

// save writes the changed records and returns the rows written and the
// records left as loaded.
func (w *writer[M]) save(ctx context.Context, tx *gorm.DB, records, orig []M, names []string, bounds []any) (written, unchanged int64, err error) {
	fields, err := w.fields(names)
	if err != nil {
		return 0, 0, err
	}
	if len(records) != len(orig) {
		return 0, 0, fmt.Errorf("save: the batch has %d records, %d were loaded: Save writes the loaded records back, in their order", len(records), len(orig))
	}
	var changed []int
	for i := range records {
		cur, was := &records[i], &orig[i]
		for _, k := range w.keys {
			if !w.equal(ctx, k, cur, was) {
				a, _ := k.ValueOf(ctx, reflect.ValueOf(cur).Elem())
				c, _ := k.ValueOf(ctx, reflect.ValueOf(was).Elem())
				return 0, 0, fmt.Errorf("save: record %d has key %s=%v where %v was loaded: Save writes the loaded records back, in their order, with their keys", i, k.DBName, a, c)
			}
		}
		for _, f := range fields {
			if !w.equal(ctx, f, cur, was) {
				changed = append(changed, i)
				break
			}
		}
	}
	unchanged = int64(len(records) - len(changed))
	if len(changed) == 0 {
		return 0, unchanged, nil
	}
	// The update time gorm's Save would set, once for the whole batch.
	var stamp *schema.Field
	var stampValue any
	for _, f := range w.schema.Fields {
		if f.AutoUpdateTime > 0 && f.Updatable && f.DBName != "" && !slices.Contains(fields, f) {
			stamp = f
			break
		}
	}
	if stamp != nil {
		now := tx.NowFunc()
		switch stamp.AutoUpdateTime {
		case schema.UnixNanosecond:
			stampValue = now.UnixNano()
		case schema.UnixMillisecond:
			stampValue = now.UnixMilli()
		case schema.UnixSecond:
			stampValue = now.Unix()
		default:
			stampValue = now
		}
		for _, i := range changed {
			if s, ok := w.slots[stamp]; ok && s.kind == slotTime {
				*(*time.Time)(unsafe.Add(unsafe.Pointer(&records[i]), s.offset)) = now
				continue
			}
			if err := stamp.Set(ctx, reflect.ValueOf(&records[i]).Elem(), stampValue); err != nil {
				return 0, 0, fmt.Errorf("save: set %s: %w", stamp.Name, err)
			}
		}
	}
	cols := append(slices.Clone(w.keys), fields...)
	dialect := tx.Dialector.Name()
	var types []string
	if dialect == "postgres" {
		if types, err = w.postgresTypes(ctx, tx, cols); err != nil {
			return 0, 0, err
		}
	}
	if dialect == "postgres" && arrayTypes(types) {
		// One statement whatever the number of records, its parameters one
		// array per column: the same text every batch (prepared once per
		// connection), nothing for the server to parse or plan per row.
		args := make([]any, 0, len(cols)+3)
		if stamp != nil {
			args = append(args, stampValue)
		}
		for _, c := range cols {
			args = append(args, w.column(ctx, c, records, changed))
		}
		if bounds != nil {
			args = append(args, bounds...)
		}
		res := tx.Session(&gorm.Session{NewDB: true}).Exec(w.postgresArraySQL(tx, cols, fields, stamp, types)+w.within(tx, bounds), args...)
		if res.Error != nil {
			return 0, unchanged, fmt.Errorf("save %d records of %s: %w", len(changed), w.table, res.Error)
		}
		return res.RowsAffected, unchanged, nil
	}
	perStatement := max(1, maxSaveParams/len(cols))
	for start := 0; start < len(changed); start += perStatement {
		chunk := changed[start:min(start+perStatement, len(changed))]
		args := make([]any, 0, len(chunk)*len(cols)+1)
		if stamp != nil && dialect != "mysql" {
			args = append(args, stampValue)
		}
		for _, i := range chunk {
			rv := reflect.ValueOf(&records[i]).Elem()
			for _, c := range cols {
				v, _ := c.ValueOf(ctx, rv)
				args = append(args, v)
			}
		}
		if stamp != nil && dialect == "mysql" {
			args = append(args, stampValue)
		}
		if bounds != nil {
			args = append(args, bounds...)
		}
		var stmt string
		switch dialect {
		case "postgres":
			stmt = w.postgresSQL(tx, cols, fields, stamp, types, len(chunk)) + w.within(tx, bounds)
		case "mysql":
			stmt = w.mysqlSQL(tx, cols, fields, stamp, len(chunk))
			if bounds != nil {
				stmt += " WHERE" + strings.TrimPrefix(w.within(tx, bounds), " AND")
			}
		case "sqlite":
			stmt = w.sqliteSQL(tx, cols, fields, stamp, len(chunk)) + w.within(tx, bounds)
		default:
			n, err := w.saveEach(tx, records, chunk, fields, stamp)
			written += n
			if err != nil {
				return written, unchanged, err
			}
			continue
		}
		res := tx.Session(&gorm.Session{NewDB: true}).Exec(stmt, args...)
		if res.Error != nil {
			return written, unchanged, fmt.Errorf("save %d records of %s: %w", len(chunk), w.table, res.Error)
		}
		written += res.RowsAffected
	}
	return written, unchanged, nil
}

// fields resolves the names Save was given.
func (w *writer[M]) fields(names []string) ([]*schema.Field, error) {
	if len(names) == 0 {
		return nil, errors.New("save: name the fields to write")
	}
	out := make([]*schema.Field, 0, len(names))
	for _, n := range names {
		f := w.schema.LookUpField(n)
		switch {
		case f == nil || f.DBName == "":
			return nil, fmt.Errorf("save: %q is not a column of %s", n, w.schema.Name)
		case slices.Contains(w.keys, f):
			return nil, fmt.Errorf("save: %q is the key, which identifies the rows Save writes", n)
		case !f.Updatable:
			return nil, fmt.Errorf("save: %q is not updatable (gorm tag)", n)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// equalField reports whether f holds the same value in a and b.
func equalField(ctx context.Context, f *schema.Field, a, b reflect.Value) bool {
	x, _ := f.ValueOf(ctx, a)
	y, _ := f.ValueOf(ctx, b)
	if f.Serializer != nil {
		// ValueOf wraps the value in the serializer: compare what it
		// writes.
		xv, errX := x.(driver.Valuer).Value()
		yv, errY := y.(driver.Valuer).Value()
		return errX == nil && errY == nil && reflect.DeepEqual(xv, yv)
	}
	switch x := x.(type) {
	case time.Time:
		y, ok := y.(time.Time)
		return ok && x.Equal(y)
	case *time.Time:
		y, ok := y.(*time.Time)
		return ok && (x == y || x != nil && y != nil && x.Equal(*y))
	case []byte:
		y, ok := y.([]byte)
		return ok && bytes.Equal(x, y) && (x == nil) == (y == nil)
	case string:
		y, ok := y.(string)
		return ok && x == y
	case int64:
		y, ok := y.(int64)
		return ok && x == y
	case int:
		y, ok := y.(int)
		return ok && x == y
	}
	return reflect.DeepEqual(x, y)
}

// postgresTypes returns the types of cols in the table, for the casts of
// the VALUES list's first row (PostgreSQL would otherwise take its
// parameters as text).
func (w *writer[M]) postgresTypes(ctx context.Context, tx *gorm.DB, cols []*schema.Field) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pgTypes == nil {
		var rows []struct{ Name, Type string }
		err := tx.Session(&gorm.Session{NewDB: true}).WithContext(ctx).Raw(
			`SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
			 WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped`, tx.Statement.Quote(w.table)).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("save: read the column types of %s: %w", w.table, err)
		}
		m := make(map[string]string, len(rows))
		for _, r := range rows {
			m[r.Name] = r.Type
		}
		w.pgTypes = m
	}
	types := make([]string, len(cols))
	for i, c := range cols {
		t, ok := w.pgTypes[c.DBName]
		if !ok {
			return nil, fmt.Errorf("save: %s has no column %s", w.table, c.DBName)
		}
		types[i] = t
	}
	return types, nil
}

// arrayTypes reports whether every type is one pgx encodes arrays of
// without registering it (not an enum or a domain, say).
func arrayTypes(types []string) bool {
	for _, t := range types {
		base, _, _ := strings.Cut(t, "(")
		switch base {
		case "bigint", "integer", "smallint", "text", "character varying", "character", "boolean",
			"double precision", "real", "numeric", "timestamp with time zone", "timestamp without time zone",
			"date", "uuid", "bytea", "jsonb", "json":
		default:
			return false
		}
	}
	return true
}

// within is " AND t.k > ? AND t.k <= ?" when the batch's range is given
// (bounds: [lo, hi], or [hi] for the first batch):
// it lets the database find the rows by a range scan of the key's index
// (all of a batch's records lie in its range).
func (w *writer[M]) within(tx *gorm.DB, bounds []any) string {
	switch len(bounds) {
	case 0:
		return ""
	case 1:
		return " AND " + w.keyRef(tx) + " <= ?"
	}
	return " AND " + w.keyRef(tx) + " > ? AND " + w.keyRef(tx) + " <= ?"
}

func (w *writer[M]) keyRef(tx *gorm.DB) string {
	return tx.Statement.Quote(w.table) + "." + tx.Statement.Quote(w.keys[0].DBName)
}

// postgresArraySQL: UPDATE t SET f = v.f, … FROM unnest($1::type[], …) AS
// v (k, f, …) WHERE t.k = v.k.
func (w *writer[M]) postgresArraySQL(tx *gorm.DB, cols, fields []*schema.Field, stamp *schema.Field, types []string) string {
	q := tx.Statement.Quote
	alias := q(valuesAlias)
	ref := func(i int) string { return alias + "." + q(cols[i].DBName) }
	var sb strings.Builder
	sb.WriteString("UPDATE " + q(w.table) + " SET ")
	setList(&sb, tx, "", cols, fields, stamp, ref)
	sb.WriteString(" FROM unnest(")
	for i, t := range types {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("?::" + t + "[]")
	}
	sb.WriteString(") AS " + alias + " (")
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(q(c.DBName))
	}
	sb.WriteString(") WHERE ")
	w.keyJoin(&sb, tx, ref)
	return sb.String()
}

// setList writes "col = alias.col, …[, stamp = ?]"; ref gives the
// alias's column for the i-th of cols.
func setList(sb *strings.Builder, tx *gorm.DB, target string, cols, fields []*schema.Field, stamp *schema.Field, ref func(i int) string) {
	for i, c := range cols {
		if i < len(cols)-len(fields) {
			continue
		}
		if i > len(cols)-len(fields) {
			sb.WriteString(", ")
		}
		sb.WriteString(target + tx.Statement.Quote(c.DBName) + " = " + ref(i))
	}
	if stamp != nil {
		sb.WriteString(", " + target + tx.Statement.Quote(stamp.DBName) + " = ?")
	}
}

// keyJoin writes "table.k = alias.k AND …" over the key columns.
func (w *writer[M]) keyJoin(sb *strings.Builder, tx *gorm.DB, ref func(i int) string) {
	for i, k := range w.keys {
		if i > 0 {
			sb.WriteString(" AND ")
		}
		sb.WriteString(tx.Statement.Quote(w.table) + "." + tx.Statement.Quote(k.DBName) + " = " + ref(i))
	}
}

// valuesRows writes n rows of len(cols) placeholders; cast, when set,
// types the first row's.
func valuesRows(sb *strings.Builder, cols, n int, cast []string) {
	for r := 0; r < n; r++ {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('?')
			if r == 0 && cast != nil {
				sb.WriteString("::" + cast[c])
			}
		}
		sb.WriteByte(')')
	}
}

// postgresSQL: UPDATE t SET f = v.f, … FROM (VALUES ($1::type, …), …) AS
// v (k, f, …) WHERE t.k = v.k.
func (w *writer[M]) postgresSQL(tx *gorm.DB, cols, fields []*schema.Field, stamp *schema.Field, types []string, n int) string {
	q := tx.Statement.Quote
	alias := q(valuesAlias)
	ref := func(i int) string { return alias + "." + q(cols[i].DBName) }
	var sb strings.Builder
	sb.WriteString("UPDATE " + q(w.table) + " SET ")
	setList(&sb, tx, "", cols, fields, stamp, ref)
	sb.WriteString(" FROM (VALUES ")
	valuesRows(&sb, len(cols), n, types)
	sb.WriteString(") AS " + alias + " (")
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(q(c.DBName))
	}
	sb.WriteString(") WHERE ")
	w.keyJoin(&sb, tx, ref)
	return sb.String()
}

// sqliteSQL: UPDATE t SET f = v.column2, … FROM (VALUES (?, …), …) AS v
// WHERE t.k = v.column1 (SQLite names a VALUES list's columns column1, …).
func (w *writer[M]) sqliteSQL(tx *gorm.DB, cols, fields []*schema.Field, stamp *schema.Field, n int) string {
	q := tx.Statement.Quote
	alias := q(valuesAlias)
	ref := func(i int) string { return fmt.Sprintf("%s.column%d", alias, i+1) }
	var sb strings.Builder
	sb.WriteString("UPDATE " + q(w.table) + " SET ")
	setList(&sb, tx, "", cols, fields, stamp, ref)
	sb.WriteString(" FROM (VALUES ")
	valuesRows(&sb, len(cols), n, nil)
	sb.WriteString(") AS " + alias + " WHERE ")
	w.keyJoin(&sb, tx, ref)
	return sb.String()
}

// mysqlSQL: UPDATE t JOIN (SELECT ? AS k, ? AS f UNION ALL SELECT ?, ? …)
// AS v ON t.k = v.k SET t.f = v.f, … (MariaDB has no VALUES list with
// column names).
func (w *writer[M]) mysqlSQL(tx *gorm.DB, cols, fields []*schema.Field, stamp *schema.Field, n int) string {
	q := tx.Statement.Quote
	alias := q(valuesAlias)
	ref := func(i int) string { return alias + "." + q(cols[i].DBName) }
	var sb strings.Builder
	sb.WriteString("UPDATE " + q(w.table) + " JOIN (")
	for r := 0; r < n; r++ {
		if r > 0 {
			sb.WriteString(" UNION ALL ")
		}
		sb.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('?')
			if r == 0 {
				sb.WriteString(" AS " + q(c.DBName))
			}
		}
	}
	sb.WriteString(") AS " + alias + " ON ")
	w.keyJoin(&sb, tx, ref)
	sb.WriteString(" SET ")
	setList(&sb, tx, q(w.table)+".", cols, fields, stamp, ref)
	return sb.String()
}

// saveEach is Save on a database without a form above: one UPDATE per
// record, as gorm's Select(fields).Updates would run it.
func (w *writer[M]) saveEach(tx *gorm.DB, records []M, chunk []int, fields []*schema.Field, stamp *schema.Field) (int64, error) {
	sel := make([]string, 0, len(fields)+1)
	for _, f := range fields {
		sel = append(sel, f.DBName)
	}
	if stamp != nil {
		sel = append(sel, stamp.DBName)
	}
	var written int64
	for _, i := range chunk {
		res := tx.Session(&gorm.Session{NewDB: true}).Model(&records[i]).Select(sel).Updates(&records[i])
		if res.Error != nil {
			return written, fmt.Errorf("save record %d of %s: %w", i, w.table, res.Error)
		}
		written += res.RowsAffected
	}
	return written, nil
}
