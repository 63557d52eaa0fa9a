package backfills

import (
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// A batch's records are loaded with the query gorm builds for Find (the
// scope, the key range, the model's soft delete), but scanned here rather
// than by gorm: gorm allocates each record through reflection, takes and
// returns a pooled value per field and sets each field through a closure,
// and grows the slice from 20 by reflect.Append. Here every column has a
// precomputed place in M (an offset), and a record costs rows.Scan and a
// typed store per field. What this scanner cannot reproduce exactly —
// serializers, AfterFind hooks, joins, preloads, embedded pointers, types
// database/sql cannot scan into — goes through gorm's Find as before.

// slotKind says how a column reaches its field.
type slotKind uint8

const (
	slotDiscard slotKind = iota // a column the model does not read
	slotDirect                  // scanned straight into the field: pointers, sql.Scanners, []byte
	slotString
	slotInt
	slotInt8
	slotInt16
	slotInt32
	slotInt64
	slotUint
	slotUint8
	slotUint16
	slotUint32
	slotUint64
	slotFloat32
	slotFloat64
	slotBool
	slotTime
)

// fieldSlot is where a field lives in M and how it is scanned.
type fieldSlot struct {
	offset uintptr
	kind   slotKind
	typ    reflect.Type // the field's type, for slotDirect
}

var (
	scannerType = reflect.TypeFor[sql.Scanner]()
	timeType    = reflect.TypeFor[time.Time]()
	bytesType   = reflect.TypeFor[[]byte]()
)

// kindOf classifies a field type; ok is false for a type only gorm scans.
func kindOf(t reflect.Type) (slotKind, bool) {
	if reflect.PointerTo(t).Implements(scannerType) {
		return slotDirect, true
	}
	switch {
	case t == timeType:
		return slotTime, true
	case t == bytesType:
		// database/sql copies the driver's bytes into a *[]byte.
		return slotDirect, true
	case t.Kind() == reflect.Pointer:
		// database/sql sets nil for NULL and allocates otherwise, then
		// converts as for the element type.
		e := t.Elem()
		if e.Kind() == reflect.Pointer {
			return 0, false
		}
		if _, ok := kindOf(e); ok {
			return slotDirect, true
		}
		return 0, false
	}
	switch t.Kind() {
	case reflect.String:
		return slotString, true
	case reflect.Int:
		return slotInt, true
	case reflect.Int8:
		return slotInt8, true
	case reflect.Int16:
		return slotInt16, true
	case reflect.Int32:
		return slotInt32, true
	case reflect.Int64:
		return slotInt64, true
	case reflect.Uint:
		return slotUint, true
	case reflect.Uint8:
		return slotUint8, true
	case reflect.Uint16:
		return slotUint16, true
	case reflect.Uint32:
		return slotUint32, true
	case reflect.Uint64:
		return slotUint64, true
	case reflect.Float32:
		return slotFloat32, true
	case reflect.Float64:
		return slotFloat64, true
	case reflect.Bool:
		return slotBool, true
	}
	return 0, false
}

// offsetOf returns the offset of the field at index in t, false when the
// path goes through a pointer (an embedded *struct, which gorm allocates).
func offsetOf(t reflect.Type, index []int) (uintptr, bool) {
	var off uintptr
	for _, i := range index {
		if i < 0 || t.Kind() != reflect.Struct {
			return 0, false
		}
		f := t.Field(i)
		off += f.Offset
		t = f.Type
	}
	return off, true
}

// scanner loads records of M from rows; nil when M needs gorm's scanning.
type scanner[M any] struct {
	schema *schema.Schema
	fields map[*schema.Field]fieldSlot
	plan   atomic.Pointer[scanPlan] // the last result's columns, mapped
	hint   atomic.Int64             // the last batch's size, to size the next
	off    atomic.Bool              // set once a scan failed where gorm's may not
}

// scanPlan maps a result's columns to fields.
type scanPlan struct {
	columns []string
	slots   []fieldSlot
}

// newScanner returns a scanner for M as parsed in s, or nil.
func newScanner[M any](s *schema.Schema) *scanner[M] {
	if s.AfterFind {
		return nil
	}
	sc := &scanner[M]{schema: s, fields: map[*schema.Field]fieldSlot{}}
	t := reflect.TypeFor[M]()
	for _, f := range s.Fields {
		if f.DBName == "" || !f.Readable {
			continue
		}
		if f.Serializer != nil {
			return nil
		}
		off, ok := offsetOf(t, f.StructField.Index)
		if !ok {
			return nil
		}
		k, ok := kindOf(f.FieldType)
		if !ok {
			return nil
		}
		sc.fields[f] = fieldSlot{offset: off, kind: k, typ: f.FieldType}
	}
	return sc
}

// planFor maps columns to fields as gorm's Scan does (LookUpField, readable
// fields only), or returns nil when it cannot (a column named twice).
func (sc *scanner[M]) planFor(columns []string) *scanPlan {
	if p := sc.plan.Load(); p != nil && slices.Equal(p.columns, columns) {
		return p
	}
	p := &scanPlan{columns: slices.Clone(columns), slots: make([]fieldSlot, len(columns))}
	seen := map[string]bool{}
	for i, c := range columns {
		if seen[c] {
			return nil
		}
		seen[c] = true
		if f := sc.schema.LookUpField(c); f != nil && f.Readable {
			slot, ok := sc.fields[f]
			if !ok {
				return nil
			}
			p.slots[i] = slot
		}
	}
	sc.plan.Store(p)
	return p
}

// discard is the destination of a column no field reads.
type discard struct{}

func (discard) Scan(any) error { return nil }

// cell holds a column's value between rows.Scan and the field: NULL
// becomes the zero value, as gorm sets it.
type cell struct {
	s  sql.NullString
	i  sql.NullInt64
	u  sql.Null[uint64]
	f  sql.NullFloat64
	b  sql.NullBool
	tm sql.NullTime
}

// scan reads every row of rows into records. A failing rows.Scan is
// reported as errScan (the caller falls back to gorm), anything else as it
// is.
func (sc *scanner[M]) scan(rows *sql.Rows, plan *scanPlan) ([]M, error) {
	slots := plan.slots
	cells := make([]cell, len(slots))
	dest := make([]any, len(slots))
	for i, s := range slots {
		c := &cells[i]
		switch s.kind {
		case slotDiscard:
			dest[i] = discard{}
		case slotString:
			dest[i] = &c.s
		case slotInt, slotInt8, slotInt16, slotInt32, slotInt64:
			dest[i] = &c.i
		case slotUint, slotUint8, slotUint16, slotUint32, slotUint64:
			dest[i] = &c.u
		case slotFloat32, slotFloat64:
			dest[i] = &c.f
		case slotBool:
			dest[i] = &c.b
		case slotTime:
			dest[i] = &c.tm
		}
	}
	records := make([]M, 0, max(sc.hint.Load(), 16))
	var zero M
	for rows.Next() {
		records = append(records, zero)
		base := unsafe.Pointer(&records[len(records)-1])
		for i, s := range slots {
			if s.kind == slotDirect {
				dest[i] = reflect.NewAt(s.typ, unsafe.Add(base, s.offset)).Interface()
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, errScan{err}
		}
		for i, s := range slots {
			p, c := unsafe.Add(base, s.offset), &cells[i]
			switch s.kind {
			case slotString:
				*(*string)(p) = c.s.String
			case slotInt:
				*(*int)(p) = int(c.i.Int64)
			case slotInt8:
				*(*int8)(p) = int8(c.i.Int64)
			case slotInt16:
				*(*int16)(p) = int16(c.i.Int64)
			case slotInt32:
				*(*int32)(p) = int32(c.i.Int64)
			case slotInt64:
				*(*int64)(p) = c.i.Int64
			case slotUint:
				*(*uint)(p) = uint(c.u.V)
			case slotUint8:
				*(*uint8)(p) = uint8(c.u.V)
			case slotUint16:
				*(*uint16)(p) = uint16(c.u.V)
			case slotUint32:
				*(*uint32)(p) = uint32(c.u.V)
			case slotUint64:
				*(*uint64)(p) = c.u.V
			case slotFloat32:
				*(*float32)(p) = float32(c.f.Float64)
			case slotFloat64:
				*(*float64)(p) = c.f.Float64
			case slotBool:
				*(*bool)(p) = c.b.Bool
			case slotTime:
				*(*time.Time)(p) = c.tm.Time
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sc.hint.Store(int64(len(records)))
	return records, nil
}

// errScan is a value database/sql could not convert into a field, which
// gorm's own conversions may accept.
type errScan struct{ err error }

func (e errScan) Error() string { return fmt.Sprintf("scan: %v", e.err) }
func (e errScan) Unwrap() error { return e.err }

// fastLoad turns the scanner off when false (the benchmarks compare it
// with gorm's Find).
var fastLoad = true

// load runs q (the scope over the batch's range, in key order) and returns
// its records.
func (sc *scanner[M]) load(q *gorm.DB, fresh func() *gorm.DB) ([]M, error) {
	if sc == nil || !fastLoad || sc.off.Load() || len(q.Statement.Preloads) > 0 {
		return find[M](fresh())
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	// The statement as run, after the scope's own Scopes were applied.
	st := q.Statement
	if len(st.Preloads) > 0 || len(st.Joins) > 0 || len(st.ColumnMapping) > 0 || st.Schema == nil || st.Schema.Table != sc.schema.Table {
		rows.Close()
		return find[M](fresh())
	}
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	plan := sc.planFor(cols)
	if plan == nil {
		rows.Close()
		return find[M](fresh())
	}
	records, err := sc.scan(rows, plan)
	if _, ok := err.(errScan); ok {
		// A value gorm converts and database/sql does not (a time stored
		// as text in SQLite, say): this pipeline loads with gorm from now
		// on, starting with this batch.
		sc.off.Store(true)
		rows.Close()
		return find[M](fresh())
	}
	return records, err
}

func find[M any](q *gorm.DB) ([]M, error) {
	var records []M
	err := q.Find(&records).Error
	return records, err
}
