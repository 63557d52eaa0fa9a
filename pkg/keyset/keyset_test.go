package keyset_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// dialect is one database the keyset planner must work on.
type dialect struct {
	name string
	url  func(testing.TB) string
	// DDL types that differ between dialects.
	uuid, timestamp string
}

var dialects = []dialect{
	{name: "postgres", url: testenv.PostgresURL, uuid: "UUID", timestamp: "TIMESTAMPTZ"},
	{name: "mysql", url: testenv.MySQLURL, uuid: "CHAR(36)", timestamp: "DATETIME(6)"},
	{name: "sqlite", url: testenv.SQLiteURL, uuid: "TEXT", timestamp: "DATETIME"},
}

func openDB(t *testing.T, d dialect) *gorm.DB {
	t.Helper()
	db, err := sqlstore.OpenDB(context.Background(), d.url(t), 0)
	if err != nil {
		t.Fatalf("open %s: %v", d.name, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// row is one test row: its key values (in key column order) and its group,
// which scopes filter on.
type row struct {
	key keyset.Key
	grp int
}

// table is a test table keyed by one or two columns.
type table struct {
	name string
	cols []string
	ddl  func(d dialect) string
	rows []row
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tables returns the tables of the walk tests: integer, string, UUID and time
// keys, and an (updated_at, id) cursor with many duplicate timestamps. Their
// rows are inserted in a shuffled order so the physical order is not the key
// order.
func tables() []table {
	rng := rand.New(rand.NewPCG(1, 2))
	var ints, strs, uuids, times, events []row

	seenInt := map[int64]bool{}
	for _, id := range []int64{math.MinInt32, -7, 0, 1, 2, math.MaxInt32 + 5, 1 << 40} {
		seenInt[id] = true
		ints = append(ints, row{key: keyset.Key{id}})
	}
	for len(ints) < 47 {
		id := rng.Int64N(10_000)
		if !seenInt[id] {
			seenInt[id] = true
			ints = append(ints, row{key: keyset.Key{id}})
		}
	}

	for _, s := range []string{"", "a", "A", "B", "b", "ab", "a b", "a-b", "Zeta", "zeta", "é", "ü", "日本", "user-9", "user-10", "user-010", "O'Brien", `quote"d`, "100", "99"} {
		strs = append(strs, row{key: keyset.Key{s}})
	}
	for i := 0; len(strs) < 43; i++ {
		strs = append(strs, row{key: keyset.Key{fmt.Sprintf("k%x", rng.Uint32())}})
	}

	for range 41 {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		uuids = append(uuids, row{key: keyset.Key{fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])}})
	}

	seenTime := map[time.Time]bool{}
	for len(times) < 39 {
		// Microsecond precision: what every dialect keeps.
		at := base.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) / time.Microsecond * time.Microsecond)
		if len(times) < 3 {
			at = base.Add(time.Duration(len(times)) * time.Second) // whole seconds too
		}
		if !seenTime[at] {
			seenTime[at] = true
			times = append(times, row{key: keyset.Key{at}})
		}
	}

	// Only five distinct timestamps for 53 events: batches must split runs
	// of equal updated_at by id.
	stamps := []time.Time{base, base.Add(time.Millisecond), base.Add(1500 * time.Microsecond), base.Add(time.Hour), base.Add(48 * time.Hour)}
	for id := int64(1); id <= 53; id++ {
		events = append(events, row{key: keyset.Key{stamps[rng.IntN(len(stamps))], id * 3}})
	}

	all := [][]row{ints, strs, uuids, times, events}
	for _, rows := range all {
		for i := range rows {
			rows[i].grp = rng.IntN(3)
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	}
	return []table{
		{name: "int_rows", cols: []string{"id"}, rows: ints,
			ddl: func(dialect) string { return "CREATE TABLE int_rows (id BIGINT PRIMARY KEY, grp INT NOT NULL)" }},
		{name: "str_rows", cols: []string{"code"}, rows: strs,
			ddl: func(dialect) string {
				return "CREATE TABLE str_rows (code VARCHAR(64) PRIMARY KEY, grp INT NOT NULL)"
			}},
		{name: "uuid_rows", cols: []string{"id"}, rows: uuids,
			ddl: func(d dialect) string {
				return "CREATE TABLE uuid_rows (id " + d.uuid + " PRIMARY KEY, grp INT NOT NULL)"
			}},
		{name: "time_rows", cols: []string{"at"}, rows: times,
			ddl: func(d dialect) string {
				return "CREATE TABLE time_rows (at " + d.timestamp + " PRIMARY KEY, grp INT NOT NULL)"
			}},
		{name: "events", cols: []string{"updated_at", "id"}, rows: events,
			ddl: func(d dialect) string {
				return "CREATE TABLE events (id BIGINT PRIMARY KEY, updated_at " + d.timestamp + " NOT NULL, grp INT NOT NULL)"
			}},
	}
}

// create makes the table and inserts its rows.
func (tb table) create(t *testing.T, db *gorm.DB, d dialect) {
	t.Helper()
	if err := db.Exec(tb.ddl(d)).Error; err != nil {
		t.Fatalf("create %s: %v", tb.name, err)
	}
	if len(tb.cols) == 2 {
		if err := db.Exec("CREATE INDEX " + tb.name + "_cursor ON " + tb.name + " (updated_at, id)").Error; err != nil {
			t.Fatalf("index %s: %v", tb.name, err)
		}
	}
	cols := strings.Join(tb.cols, ", ")
	marks := strings.Repeat("?, ", len(tb.cols))
	err := db.Transaction(func(tx *gorm.DB) error {
		for _, r := range tb.rows {
			args := append(slices.Clone([]any(r.key)), r.grp)
			if err := tx.Exec("INSERT INTO "+tb.name+" ("+cols+", grp) VALUES ("+marks+"?)", args...).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fill %s: %v", tb.name, err)
	}
}

// compareKeys orders keys the way the test databases do: integers
// numerically, strings bytewise (C collation, utf8mb4_bin, SQLite BINARY),
// times chronologically, column by column.
func compareKeys(a, b keyset.Key) int {
	for i := range a {
		var c int
		switch x := a[i].(type) {
		case int64:
			c = cmpInt(x, b[i].(int64))
		case string:
			c = strings.Compare(x, b[i].(string))
		case time.Time:
			c = x.Compare(b[i].(time.Time))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// expected returns the encoded keys of the rows accepted by keep, in key
// order.
func expected(t *testing.T, rows []row, keep func(row) bool) []string {
	t.Helper()
	var keys []keyset.Key
	for _, r := range rows {
		if keep(r) {
			keys = append(keys, r.key)
		}
	}
	slices.SortFunc(keys, compareKeys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = mustEncode(t, k)
	}
	return out
}

func mustEncode(t *testing.T, k keyset.Key) string {
	t.Helper()
	s, err := keyset.Encode(k)
	if err != nil {
		t.Fatalf("encode %v: %v", k, err)
	}
	return s
}

// rangeKeys reads the rows of (lo, hi] with keyset.Range and returns their
// encoded keys in the order the database returned them.
func rangeKeys(t *testing.T, q *gorm.DB, cols []string, lo, hi keyset.Key) []string {
	t.Helper()
	var rows []map[string]any
	if err := keyset.Range(q.Session(&gorm.Session{}), keyset.Cols(cols...), lo, hi).Find(&rows).Error; err != nil {
		t.Fatalf("range (%v, %v]: %v", lo, hi, err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		k := make(keyset.Key, len(cols))
		for j, c := range cols {
			k[j] = r[c]
		}
		out[i] = mustEncode(t, k)
	}
	return out
}

// batch is one planned batch.
type batch struct {
	lo, hi keyset.Key
	full   bool
	keys   []string
}

// walk plans batches with Next from the start until ErrNoRows and reads each
// batch's rows with Range.
func walk(t *testing.T, q *gorm.DB, cols []string, size, maxBatches int) []batch {
	t.Helper()
	ctx := context.Background()
	var out []batch
	var lo keyset.Key
	for {
		hi, full, err := keyset.Next(ctx, q, keyset.Cols(cols...), lo, size)
		if errors.Is(err, keyset.ErrNoRows) {
			if hi != nil || full {
				t.Errorf("Next at the end returned hi %v full %v with ErrNoRows", hi, full)
			}
			return out
		}
		if err != nil {
			t.Fatalf("Next after %v: %v", lo, err)
		}
		out = append(out, batch{lo: lo, hi: hi, full: full, keys: rangeKeys(t, q, cols, lo, hi)})
		if len(out) > maxBatches {
			t.Fatalf("Next does not reach the end: %d batches for at most %d", len(out), maxBatches)
		}
		// Keys travel through the store as strings.
		if lo, err = keyset.Decode(mustEncode(t, hi)); err != nil {
			t.Fatalf("decode %v: %v", hi, err)
		}
	}
}

func TestWalk(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			for _, tb := range tables() {
				tb.create(t, db, d)
				scopes := []struct {
					name  string
					where func(*gorm.DB) *gorm.DB
					keep  func(row) bool
				}{
					{"all", func(q *gorm.DB) *gorm.DB { return q }, func(row) bool { return true }},
					{"grp<>1", func(q *gorm.DB) *gorm.DB { return q.Where("grp <> ?", 1) }, func(r row) bool { return r.grp != 1 }},
					{"grp=2", func(q *gorm.DB) *gorm.DB { return q.Where("grp = ?", 2) }, func(r row) bool { return r.grp == 2 }},
					{"none", func(q *gorm.DB) *gorm.DB { return q.Where("grp = ?", 99) }, func(row) bool { return false }},
					// A scope's own ORDER BY must not change the batches.
					{"ordered", func(q *gorm.DB) *gorm.DB { return q.Where("grp <> ?", 1).Order("grp DESC") }, func(r row) bool { return r.grp != 1 }},
				}
				for _, sc := range scopes {
					want := expected(t, tb.rows, sc.keep)
					sizes := []int{1, 2, 7, len(want) + 1, 1000}
					if len(want) > 1 {
						sizes = append(sizes, len(want), len(want)-1)
					}
					if n := len(want); n > 3 && n%3 == 0 {
						sizes = append(sizes, n/3) // the last batch is exactly full
					}
					slices.Sort(sizes)
					sizes = slices.Compact(sizes)
					for _, size := range sizes {
						t.Run(fmt.Sprintf("%s/%s/size=%d", tb.name, sc.name, size), func(t *testing.T) {
							q := sc.where(db.Table(tb.name))
							batches := walk(t, q, tb.cols, size, len(want)+2)
							var got []string
							for i, b := range batches {
								last := i == len(batches)-1
								switch {
								case b.full && len(b.keys) != size:
									t.Errorf("batch %d (%v, %v] is full with %d keys, want %d", i, b.lo, b.hi, len(b.keys), size)
								case !b.full && !last:
									t.Errorf("batch %d (%v, %v] is not full but is not the last", i, b.lo, b.hi)
								case !b.full && (len(b.keys) == 0 || len(b.keys) > size):
									t.Errorf("last batch %d (%v, %v] has %d keys, want 1..%d", i, b.lo, b.hi, len(b.keys), size)
								}
								if n := len(b.keys); n > 0 && b.keys[n-1] != mustEncode(t, b.hi) {
									t.Errorf("batch %d ends at %s, want its hi %s", i, b.keys[n-1], mustEncode(t, b.hi))
								}
								got = append(got, b.keys...)
							}
							if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
								t.Errorf("keys visited by the walk (-want +got):\n%s", diff)
							}
							wantBatches := (len(want) + size - 1) / size
							if len(batches) != wantBatches {
								t.Errorf("%d batches, want %d", len(batches), wantBatches)
							}
						})
					}
				}
			}
		})
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			for _, tb := range tables() {
				tb.create(t, db, d)
				sorted := slices.Clone(tb.rows)
				slices.SortFunc(sorted, func(a, b row) int { return compareKeys(a.key, b.key) })
				n := len(sorted)
				bounds := []struct {
					name   string
					lo, hi keyset.Key
				}{
					{"unbounded", nil, nil},
					{"from start", nil, sorted[n/2].key},
					{"to end", sorted[n/3].key, nil},
					{"middle", sorted[4].key, sorted[n-5].key},
					{"one row", sorted[9].key, sorted[10].key},
					{"first row", nil, sorted[0].key},
					{"empty lo=hi", sorted[7].key, sorted[7].key},
					{"empty lo>hi", sorted[12].key, sorted[3].key},
					{"after last", sorted[n-1].key, nil},
				}
				// Bounds need not be keys of rows.
				switch tb.cols[0] {
				case "id":
					if _, ok := sorted[0].key[0].(int64); ok && len(tb.cols) == 1 {
						bounds = append(bounds, struct {
							name   string
							lo, hi keyset.Key
						}{"not keys", keyset.Key{int64(3)}, keyset.Key{int64(5000)}})
					}
				case "updated_at":
					bounds = append(bounds, struct {
						name   string
						lo, hi keyset.Key
					}{"inside a run of equal timestamps", keyset.Key{base, int64(40)}, keyset.Key{base.Add(time.Hour), int64(90)}})
				}
				for _, sc := range []struct {
					name  string
					where func(*gorm.DB) *gorm.DB
					keep  func(row) bool
				}{
					{"all", func(q *gorm.DB) *gorm.DB { return q }, func(row) bool { return true }},
					{"grp<>0", func(q *gorm.DB) *gorm.DB { return q.Where("grp <> ?", 0) }, func(r row) bool { return r.grp != 0 }},
					{"ordered", func(q *gorm.DB) *gorm.DB { return q.Order("grp") }, func(row) bool { return true }},
				} {
					for _, bd := range bounds {
						t.Run(tb.name+"/"+sc.name+"/"+bd.name, func(t *testing.T) {
							want := expected(t, tb.rows, func(r row) bool {
								return sc.keep(r) &&
									(bd.lo == nil || compareKeys(r.key, bd.lo) > 0) &&
									(bd.hi == nil || compareKeys(r.key, bd.hi) <= 0)
							})
							got := rangeKeys(t, sc.where(db.Table(tb.name)), tb.cols, bd.lo, bd.hi)
							if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
								t.Errorf("Range(%v, %v] (-want +got):\n%s", bd.lo, bd.hi, diff)
							}
						})
					}
				}
			}
		})
	}
}

func TestNextErrors(t *testing.T) {
	t.Parallel()
	db := openDB(t, dialects[2])
	tb := tables()[0]
	tb.create(t, db, dialects[2])
	ctx := context.Background()
	for _, size := range []int{0, -1} {
		if _, _, err := keyset.Next(ctx, db.Table(tb.name), keyset.Cols("id"), nil, size); err == nil || !strings.Contains(err.Error(), "batch size") {
			t.Errorf("Next with size %d: error %v, want one about the batch size", size, err)
		}
	}
	if _, _, err := keyset.Next(ctx, db.Table("no_such_table"), keyset.Cols("id"), nil, 10); err == nil || errors.Is(err, keyset.ErrNoRows) {
		t.Errorf("Next on a missing table: error %v, want a database error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := keyset.Next(cctx, db.Table(tb.name), keyset.Cols("id"), nil, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context: error %v, want context.Canceled", err)
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			ctx := context.Background()
			for _, tb := range tables() {
				tb.create(t, db, d)
				for _, grp := range []int{0, 1, 2, 99} {
					var want int64
					for _, r := range tb.rows {
						if r.grp != grp {
							want++
						}
					}
					n, estimated, err := keyset.Count(ctx, db.Table(tb.name).Where("grp <> ?", grp).Order("grp"), tb.name, 10*time.Second)
					if err != nil || estimated || n != want {
						t.Errorf("Count %s grp<>%d = %d, estimated %v, %v; want exactly %d", tb.name, grp, n, estimated, err, want)
					}
				}
			}
		})
	}
}

// TestCountEstimate: when counting exactly takes longer than the timeout,
// PostgreSQL and MySQL answer with the table's statistics, never a negative
// number; SQLite, which keeps none, reports the error.
func TestCountEstimate(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			ctx := context.Background()
			tb := tables()[0]
			tb.create(t, db, d)
			// A table never analyzed: PostgreSQL keeps reltuples = -1.
			n, estimated, err := keyset.Count(ctx, db.Table(tb.name), tb.name, time.Nanosecond)
			if d.name == "sqlite" {
				if err == nil {
					t.Errorf("Count on SQLite past its timeout = %d, %v; want an error", n, estimated)
				}
				return
			}
			if err != nil || !estimated || n < 0 {
				t.Errorf("Count past its timeout on a fresh table = %d, estimated %v, %v; want a non-negative estimate", n, estimated, err)
			}
			analyze := "ANALYZE " + tb.name
			if d.name == "mysql" {
				analyze = "ANALYZE TABLE " + tb.name
			}
			if err := db.Exec(analyze).Error; err != nil {
				t.Fatal(err)
			}
			n, estimated, err = keyset.Count(ctx, db.Table(tb.name), tb.name, time.Nanosecond)
			if err != nil || !estimated || n <= 0 || n > 10*int64(len(tb.rows)) {
				t.Errorf("Count past its timeout after ANALYZE = %d, estimated %v, %v; want an estimate near %d", n, estimated, err, len(tb.rows))
			}
		})
	}
}

func TestPrimaryKey(t *testing.T) {
	type byID struct {
		ID   int64
		Name string
	}
	type byCode struct {
		Code string `gorm:"primaryKey"`
		Name string
	}
	type byColumn struct {
		Ref string `gorm:"primaryKey;column:ref_uuid"`
	}
	type composite struct {
		TenantID int64 `gorm:"primaryKey"`
		ID       int64 `gorm:"primaryKey"`
	}
	type noKey struct {
		Name string
	}
	db := openDB(t, dialects[2])
	for _, tc := range []struct {
		model   any
		want    []keyset.Column
		wantErr bool
	}{
		{model: &byID{}, want: keyset.Cols("id")},
		{model: &byCode{}, want: keyset.Cols("code")},
		{model: &byColumn{}, want: keyset.Cols("ref_uuid")},
		{model: &composite{}, wantErr: true},
		{model: &noKey{}, wantErr: true},
	} {
		t.Run(fmt.Sprintf("%T", tc.model), func(t *testing.T) {
			got, err := keyset.PrimaryKey(db, tc.model)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("PrimaryKey = %v, want an error", got)
				}
				if !strings.Contains(err.Error(), "primary key") {
					t.Errorf("error %q does not say what is wrong", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("PrimaryKey (-want +got):\n%s", diff)
			}
		})
	}
}

type uuidBytes [16]byte

func (u uuidBytes) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

func TestEncodeDecode(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	n := int64(42)
	u := uuidBytes{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
	for _, tc := range []struct {
		name    string
		key     keyset.Key
		encoded string
		decoded keyset.Key // what Decode(encoded) gives; key when nil
	}{
		{name: "nil", key: nil, encoded: ""},
		{name: "int64", key: keyset.Key{int64(42)}, encoded: `[42]`},
		{name: "int", key: keyset.Key{7}, encoded: `[7]`, decoded: keyset.Key{int64(7)}},
		{name: "int32", key: keyset.Key{int32(-3)}, encoded: `[-3]`, decoded: keyset.Key{int64(-3)}},
		{name: "uint16", key: keyset.Key{uint16(65535)}, encoded: `[65535]`, decoded: keyset.Key{int64(65535)}},
		{name: "max int64", key: keyset.Key{int64(math.MaxInt64)}, encoded: `[9223372036854775807]`},
		{name: "min int64", key: keyset.Key{int64(math.MinInt64)}, encoded: `[-9223372036854775808]`},
		{name: "pointer", key: keyset.Key{&n}, encoded: `[42]`, decoded: keyset.Key{int64(42)}},
		{name: "string", key: keyset.Key{"abc"}, encoded: `["abc"]`},
		{name: "empty string", key: keyset.Key{""}, encoded: `[""]`},
		{name: "unicode string", key: keyset.Key{"日本 \"q\""}, encoded: `["日本 \"q\""]`},
		{name: "string that looks like a time", key: keyset.Key{`{"t":"2026-01-01T00:00:00Z"}`}, encoded: `["{\"t\":\"2026-01-01T00:00:00Z\"}"]`},
		{name: "bytes", key: keyset.Key{[]byte("abc")}, encoded: `["abc"]`, decoded: keyset.Key{"abc"}},
		{name: "uuid string", key: keyset.Key{"123e4567-e89b-12d3-a456-426614174000"}, encoded: `["123e4567-e89b-12d3-a456-426614174000"]`},
		{name: "uuid type", key: keyset.Key{u}, encoded: `["123e4567-e89b-12d3-a456-426614174000"]`, decoded: keyset.Key{"123e4567-e89b-12d3-a456-426614174000"}},
		{name: "uuid bytes", key: keyset.Key{[16]byte(u)}, encoded: `["123e4567-e89b-12d3-a456-426614174000"]`, decoded: keyset.Key{"123e4567-e89b-12d3-a456-426614174000"}},
		{name: "utc time", key: keyset.Key{time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)}, encoded: `[{"t":"2026-11-01T10:00:00Z"}]`},
		{name: "time in a zone is stored in UTC", key: keyset.Key{time.Date(2026, 11, 1, 11, 0, 0, 5, paris)},
			encoded: `[{"t":"2026-11-01T10:00:00.000000005Z"}]`, decoded: keyset.Key{time.Date(2026, 11, 1, 10, 0, 0, 5, time.UTC)}},
		{name: "time pointer", key: keyset.Key{&base}, encoded: `[{"t":"2026-03-01T12:00:00Z"}]`, decoded: keyset.Key{base}},
		{name: "cursor", key: keyset.Key{time.Date(2026, 11, 1, 10, 0, 0, 123456000, time.UTC), int64(42)},
			encoded: `[{"t":"2026-11-01T10:00:00.123456Z"},42]`},
		{name: "string and int", key: keyset.Key{"eu", int64(1)}, encoded: `["eu",1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keyset.Encode(tc.key)
			if err != nil {
				t.Fatalf("Encode(%v): %v", tc.key, err)
			}
			if got != tc.encoded {
				t.Errorf("Encode(%v) = %s, want %s", tc.key, got, tc.encoded)
			}
			want := tc.decoded
			if want == nil {
				want = tc.key
			}
			back, err := keyset.Decode(got)
			if err != nil {
				t.Fatalf("Decode(%s): %v", got, err)
			}
			if diff := cmp.Diff(want, back); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", got, diff)
			}
			if tc.decoded == nil && tc.key != nil {
				for i := range back {
					if tm, ok := back[i].(time.Time); ok && tm.Location() != time.UTC {
						t.Errorf("decoded time %v is not in UTC", tm)
					}
				}
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	var nilPtr *int64
	for _, tc := range []struct {
		name string
		key  keyset.Key
	}{
		{"nil value", keyset.Key{nil}},
		{"nil pointer", keyset.Key{nilPtr}},
		{"float", keyset.Key{1.5}},
		{"bool", keyset.Key{true}},
		{"slice", keyset.Key{[]int{1}}},
		{"map", keyset.Key{map[string]any{"t": "x"}}},
		{"uint64 beyond int64", keyset.Key{uint64(math.MaxUint64)}},
		{"year beyond 9999", keyset.Key{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"second column NULL", keyset.Key{base, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := keyset.Encode(tc.key); err == nil {
				t.Errorf("Encode(%#v) = %s, want an error", tc.key, s)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, s := range []string{
		"42",
		"[]",
		"[",
		"[1,",
		"null",
		"{}",
		`"x"`,
		"[null]",
		"[true]",
		"[1.5]",
		"[1e3]",
		"[9223372036854775808]",
		"[[1]]",
		`[{"t":"yesterday"}]`,
		`[{"t":42}]`,
		`[{"t":"2026-01-01T00:00:00Z","u":1}]`,
		`[{}]`,
		`[{"time":"2026-01-01T00:00:00Z"}]`,
		"[1] [2]",
		"[1]x",
		"[1]]",
		"[1]}",
		// A time that is in range in its zone but not in UTC.
		`[{"t":"0000-01-01T00:30:00+01:00"}]`,
		`[{"t":"9999-12-31T23:30:00-01:00"}]`,
	} {
		t.Run(s, func(t *testing.T) {
			if k, err := keyset.Decode(s); err == nil {
				t.Errorf("Decode(%s) = %#v, want an error", s, k)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"", "[42]", "[-1]", `["abc"]`, `[""]`, `[{"t":"2026-11-01T10:00:00Z"},42]`,
		`[{"t":"2026-11-01T10:00:00.123456789+02:00"}]`, `["\u00e9", 1, "x"]`, "[1]]", " [1] ",
		`[{"t":"0000-01-01T00:00:00Z"}]`, `["\xff"]`, "[1.0]", "[[]]", `[{"t":"x"}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := keyset.Decode(s)
		if err != nil {
			return
		}
		if k == nil {
			if strings.TrimSpace(s) != "" {
				t.Fatalf("Decode(%q) = nil without error", s)
			}
			return
		}
		for i, v := range k {
			switch v.(type) {
			case int64, string, time.Time:
			default:
				t.Fatalf("Decode(%q)[%d] = %T, want int64, string or time.Time", s, i, v)
			}
		}
		enc, err := keyset.Encode(k)
		if err != nil {
			t.Fatalf("Decode(%q) accepted %#v but Encode fails: %v", s, k, err)
		}
		back, err := keyset.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = Decode(%s): %v", s, enc, err)
		}
		if diff := cmp.Diff(k, back); diff != "" {
			t.Fatalf("round trip of %q through %s (-first +second):\n%s", s, enc, diff)
		}
		if enc2, err := keyset.Encode(back); err != nil || enc2 != enc {
			t.Fatalf("Encode is not canonical: %s then %s (%v)", enc, enc2, err)
		}
	})
}

// TestCountSnapshot: on PostgreSQL and MySQL, Count counts at the instant it
// announces through OnSnapshot, so what commits after it (the first batches
// of a backfill that moves records out of its own scope) does not change
// the total.
func TestCountSnapshot(t *testing.T) {
	t.Parallel()
	for _, d := range dialects[:2] {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			tb := tables()[0]
			tb.create(t, db, d)
			want := int64(len(tb.rows))
			calls := 0
			ctx := keyset.OnSnapshot(context.Background(), func() {
				calls++
				if calls == 1 {
					// Another connection empties the table and commits.
					if err := db.Exec("DELETE FROM " + tb.name).Error; err != nil {
						t.Error(err)
					}
				}
			})
			n, estimated, err := keyset.Count(ctx, db.Table(tb.name), tb.name, 10*time.Second)
			if err != nil || estimated || n != want {
				t.Errorf("Count = %d, estimated %v, %v; want the %d rows there when its snapshot was taken", n, estimated, err, want)
			}
			if calls == 0 {
				t.Error("Count never announced its snapshot")
			}
			var left int64
			if err := db.Table(tb.name).Count(&left).Error; err != nil || left != 0 {
				t.Errorf("rows left %d, %v; want the delete committed", left, err)
			}
		})
	}
}
