package sqlconn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

type dialect struct {
	name      string
	url       func(testing.TB) string
	timestamp string
}

var dialects = []dialect{
	{name: "postgres", url: testenv.PostgresURL, timestamp: "TIMESTAMPTZ"},
	{name: "mysql", url: testenv.MySQLURL, timestamp: "DATETIME(6)"},
	{name: "sqlite", url: testenv.SQLiteURL, timestamp: "DATETIME"},
}

// forEachDialect runs fn in parallel subtests, one per dialect, each on a
// fresh database holding the users and backups tables.
func forEachDialect(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db, err := sqlstore.OpenDB(context.Background(), d.url(t), 0)
			if err != nil {
				t.Fatalf("open %s: %v", d.name, err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			})
			for _, ddl := range []string{
				"CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(100) NOT NULL, active BOOLEAN NOT NULL, score INT NOT NULL, updated_at " + d.timestamp + " NOT NULL)",
				"CREATE UNIQUE INDEX users_email ON users (email)",
				"CREATE INDEX users_cursor ON users (updated_at, id)",
				"CREATE TABLE backups (user_id BIGINT PRIMARY KEY, email VARCHAR(100), score INT, user_updated_at " + d.timestamp + " NULL)",
				"CREATE TABLE log (user_id BIGINT NOT NULL, email VARCHAR(100))",
			} {
				if err := db.Exec(ddl).Error; err != nil {
					t.Fatalf("%s: %v", ddl, err)
				}
			}
			fn(t, db)
		})
	}
}

var t0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

type user struct {
	ID        int64
	Email     string
	Active    bool
	Score     int
	UpdatedAt time.Time
}

// seed inserts n users, in an order unlike their ids: user i is active
// unless i%4 == 0, and many users share an updated_at.
func seed(t *testing.T, db *gorm.DB, n int) []user {
	t.Helper()
	var users []user
	for i := n; i >= 1; i-- {
		u := user{
			ID:        int64(i * 10),
			Email:     fmt.Sprintf("user%03d@example.com", i),
			Active:    i%4 != 0,
			Score:     i,
			UpdatedAt: t0.Add(time.Duration(i%5) * time.Minute),
		}
		if err := db.Exec("INSERT INTO users (id, email, active, score, updated_at) VALUES (?, ?, ?, ?, ?)",
			u.ID, u.Email, u.Active, u.Score, u.UpdatedAt).Error; err != nil {
			t.Fatalf("seed user %d: %v", u.ID, err)
		}
		users = append(users, u)
	}
	return users
}

// readAll plans src from lo with Next (size per batch) and reads each batch;
// it returns the ids read, in order, and the number of batches.
func readAll(t *testing.T, db *gorm.DB, src flows.Source, lo string, size int) (ids []int64, batches int) {
	t.Helper()
	ctx := context.Background()
	for {
		hi, more, ok, err := src.Next(ctx, db, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
		}
		if !ok {
			return ids, batches
		}
		recs, err := src.Read(ctx, db, lo, hi)
		if err != nil {
			t.Fatalf("Read(%q, %q]: %v", lo, hi, err)
		}
		if more && len(recs) != size {
			t.Errorf("batch (%q, %q] is full but has %d records, want %d", lo, hi, len(recs), size)
		}
		for _, r := range recs {
			ids = append(ids, asInt(t, r["id"]))
		}
		batches++
		if batches > 1000 {
			t.Fatal("Next never reaches the end")
		}
		lo = hi
	}
}

func asInt(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case int:
		return int64(x)
	}
	t.Fatalf("value %v is %T, want an integer", v, v)
	return 0
}

func idsOf(users []user, keep func(user) bool) []int64 {
	var out []int64
	for _, u := range users {
		if keep(u) {
			out = append(out, u.ID)
		}
	}
	return out
}

func sortedIDs(ids []int64) []int64 {
	out := append([]int64(nil), ids...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestSourceFull(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		users := seed(t, db, 23)
		active := sortedIDs(idsOf(users, func(u user) bool { return u.Active }))

		for _, tc := range []struct {
			name string
			src  *sqlconn.Source
			want []int64
		}{
			{"all rows", &sqlconn.Source{Table: "users"}, sortedIDs(idsOf(users, func(user) bool { return true }))},
			{"where", &sqlconn.Source{Table: "users", Where: "active = ?", Args: []any{true}}, active},
			{"two args", &sqlconn.Source{Table: "users", Where: "active = ? AND score > ?", Args: []any{true, 10}},
				sortedIDs(idsOf(users, func(u user) bool { return u.Active && u.Score > 10 }))},
			{"explicit key", &sqlconn.Source{Table: "users", Key: "id", Where: "active = ?", Args: []any{true}}, active},
			{"nothing in scope", &sqlconn.Source{Table: "users", Where: "score > ?", Args: []any{1000}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.src.Incremental() {
					t.Error("a source without Cursor is incremental")
				}
				for _, size := range []int{1, 4, 100} {
					got, batches := readAll(t, db, tc.src, "", size)
					if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("size %d: ids read (-want +got):\n%s", size, diff)
					}
					if want := (len(tc.want) + size - 1) / size; batches != want {
						t.Errorf("size %d: %d batches, want %d", size, batches, want)
					}
				}
				n, estimated, err := tc.src.Count(ctx, db)
				if err != nil || estimated || n != int64(len(tc.want)) {
					t.Errorf("Count = %d, estimated %v, %v; want exactly %d", n, estimated, err, len(tc.want))
				}
			})
		}

		t.Run("string key and columns", func(t *testing.T) {
			src := &sqlconn.Source{Table: "users", Key: "email", Columns: []string{"email", "score"}, Where: "active = ?", Args: []any{true}}
			var emails []string
			lo := ""
			for {
				hi, _, ok, err := src.Next(ctx, db, lo, 5)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				recs, err := src.Read(ctx, db, lo, hi)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if len(r) != 2 {
						t.Errorf("record %v has columns other than email and score", r)
					}
					email, ok := r["email"].(string)
					if !ok {
						t.Fatalf("email %v is %T, want a string", r["email"], r["email"])
					}
					emails = append(emails, email)
				}
				lo = hi
			}
			var want []string
			for i := 1; i <= 23; i++ {
				if i%4 != 0 {
					want = append(want, fmt.Sprintf("user%03d@example.com", i))
				}
			}
			if diff := cmp.Diff(want, emails); diff != "" {
				t.Errorf("emails read in key order (-want +got):\n%s", diff)
			}
		})
	})
}

func TestSourceIncremental(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		users := seed(t, db, 30)
		src := &sqlconn.Source{Table: "users", Where: "active = ?", Args: []any{true}, Cursor: []string{"updated_at", "id"}}
		if !src.Incremental() {
			t.Fatal("a source with a Cursor is not incremental")
		}
		after := func(at time.Time, id int64) func(user) bool {
			return func(u user) bool {
				return u.Active && (u.UpdatedAt.After(at) || u.UpdatedAt.Equal(at) && u.ID > id)
			}
		}
		// cursorOrder returns the ids of the users kept, in (updated_at, id) order.
		cursorOrder := func(users []user, keep func(user) bool) []int64 {
			var out []int64
			for m := 0; m < 5; m++ {
				at := t0.Add(time.Duration(m) * time.Minute)
				out = append(out, sortedIDs(idsOf(users, func(u user) bool { return keep(u) && u.UpdatedAt.Equal(at) }))...)
			}
			return out
		}
		for _, tc := range []struct {
			name      string
			watermark keyset.Key
			want      []int64
		}{
			{"no watermark", nil, cursorOrder(users, after(time.Time{}, 0))},
			{"inside a run of equal updated_at", keyset.Key{t0.Add(2 * time.Minute), int64(120)}, cursorOrder(users, after(t0.Add(2*time.Minute), 120))},
			{"between timestamps", keyset.Key{t0.Add(90 * time.Second), int64(0)}, cursorOrder(users, after(t0.Add(90*time.Second), 0))},
			{"at the last row", keyset.Key{t0.Add(4 * time.Minute), int64(290)}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wm, err := keyset.Encode(tc.watermark)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int{1, 3, 50} {
					got, _ := readAll(t, db, src, wm, size)
					if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("size %d from %s: ids read (-want +got):\n%s", size, wm, diff)
					}
				}
			})
		}

		// A run that ends at the last cursor, then a change: the next run
		// from that watermark reads only the changed row.
		var last string
		for lo := ""; ; {
			hi, _, ok, err := src.Next(ctx, db, lo, 7)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			last, lo = hi, hi
		}
		if err := db.Exec("UPDATE users SET score = 99, updated_at = ? WHERE id = ?", t0.Add(time.Hour), 30).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("UPDATE users SET score = 99, updated_at = ? WHERE id = ?", t0.Add(time.Hour), 40).Error; err != nil { // inactive
			t.Fatal(err)
		}
		got, _ := readAll(t, db, src, last, 10)
		if diff := cmp.Diff([]int64{30}, got); diff != "" {
			t.Errorf("read after the watermark %s (-want +got):\n%s", last, diff)
		}
	})
}

type backup struct {
	UserID int64
	Email  *string
	Score  *int64
}

func backups(t *testing.T, db *gorm.DB) []backup {
	t.Helper()
	var out []backup
	if err := db.Table("backups").Order("user_id").Find(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func records(from, to int, email string, score int) []flows.Record {
	var out []flows.Record
	for i := from; i <= to; i++ {
		out = append(out, flows.Record{"user_id": int64(i), "email": fmt.Sprintf(email, i), "score": score})
	}
	return out
}

func backupsOf(from, to int, email string, score int64) []backup {
	var out []backup
	for i := from; i <= to; i++ {
		out = append(out, backup{UserID: int64(i), Email: ptr(fmt.Sprintf(email, i)), Score: ptr(score)})
	}
	return out
}

func TestSink(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		write := func(t *testing.T, s *sqlconn.Sink, recs []flows.Record) {
			t.Helper()
			n, err := s.Write(ctx, db, recs)
			if err != nil {
				t.Fatalf("Write %d records: %v", len(recs), err)
			}
			if n != int64(len(recs)) {
				t.Errorf("Write %d records reports %d written", len(recs), n)
			}
		}
		reset := func(t *testing.T) {
			t.Helper()
			if err := db.Exec("DELETE FROM backups").Error; err != nil {
				t.Fatal(err)
			}
		}

		t.Run("insert without key", func(t *testing.T) {
			s := &sqlconn.Sink{Table: "log", Mode: sqlconn.Insert}
			write(t, s, []flows.Record{{"user_id": 1, "email": "a"}, {"user_id": 2}})
			write(t, s, []flows.Record{{"user_id": 1, "email": "a"}})
			var n int64
			if err := db.Table("log").Count(&n).Error; err != nil || n != 3 {
				t.Errorf("log has %d rows (%v), want 3: an insert without key appends", n, err)
			}
		})

		t.Run("insert with key is idempotent", func(t *testing.T) {
			reset(t)
			s := &sqlconn.Sink{Table: "backups", Mode: sqlconn.Insert, Key: []string{"user_id"}, ChunkSize: 4}
			write(t, s, records(1, 10, "u%d@x", 1))
			write(t, s, records(1, 10, "u%d@x", 1))
			// Same keys with other values: the rows already there stay.
			write(t, s, records(5, 12, "changed%d@x", 2))
			want := append(backupsOf(1, 10, "u%d@x", 1), backupsOf(11, 12, "changed%d@x", 2)...)
			if diff := cmp.Diff(want, backups(t, db)); diff != "" {
				t.Errorf("backups (-want +got):\n%s", diff)
			}
		})

		t.Run("upsert updates and never duplicates", func(t *testing.T) {
			reset(t)
			s := &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}, ChunkSize: 3}
			write(t, s, records(1, 8, "u%d@x", 1))
			write(t, s, records(1, 8, "u%d@x", 1))
			write(t, s, records(4, 11, "v%d@x", 2))
			want := append(backupsOf(1, 3, "u%d@x", 1), backupsOf(4, 11, "v%d@x", 2)...)
			if diff := cmp.Diff(want, backups(t, db)); diff != "" {
				t.Errorf("backups (-want +got):\n%s", diff)
			}
			// Records carrying only the key: nothing to update, nothing duplicated.
			write(t, s, []flows.Record{{"user_id": int64(1)}, {"user_id": int64(20)}})
			want = append(want, backup{UserID: 20})
			if diff := cmp.Diff(want, backups(t, db)); diff != "" {
				t.Errorf("backups after key-only upsert (-want +got):\n%s", diff)
			}
		})

		t.Run("upsert of times", func(t *testing.T) {
			reset(t)
			s := &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}}
			at := t0.Add(123456 * time.Microsecond)
			write(t, s, []flows.Record{{"user_id": int64(1), "user_updated_at": at}})
			write(t, s, []flows.Record{{"user_id": int64(1), "user_updated_at": at.Add(time.Hour)}})
			var got []struct {
				UserID        int64
				UserUpdatedAt time.Time
			}
			if err := db.Table("backups").Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !got[0].UserUpdatedAt.Equal(at.Add(time.Hour)) {
				t.Errorf("backups = %+v, want one row updated to %v", got, at.Add(time.Hour))
			}
		})

		t.Run("no records", func(t *testing.T) {
			n, err := (&sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}}).Write(ctx, db, nil)
			if n != 0 || err != nil {
				t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
			}
		})

		t.Run("a failing write is an error naming the table", func(t *testing.T) {
			_, err := (&sqlconn.Sink{Table: "backups", Mode: sqlconn.Insert}).Write(ctx, db, []flows.Record{{"no_such_column": 1}})
			if err == nil || !strings.Contains(err.Error(), "backups") {
				t.Errorf("Write of an unknown column: %v, want an error naming the table", err)
			}
		})
	})
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.OpenDB(context.Background(), testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := db.Exec("CREATE TABLE backups (user_id BIGINT PRIMARY KEY, email TEXT)").Error; err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	recs := []flows.Record{{"user_id": 1, "email": "a"}}

	for _, tc := range []struct {
		name string
		sink *sqlconn.Sink
		want string
	}{
		{"no table", &sqlconn.Sink{Mode: sqlconn.Insert}, "Table is required"},
		{"upsert without key", &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert}, "Upsert needs Key"},
		{"unknown mode", &sqlconn.Sink{Table: "backups", Mode: "replace"}, `Mode must be "insert" or "upsert", got "replace"`},
		{"no mode", &sqlconn.Sink{Table: "backups"}, `Mode must be "insert" or "upsert", got ""`},
	} {
		t.Run("sink/"+tc.name, func(t *testing.T) {
			_, err := tc.sink.Write(ctx, db, recs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write: %v, want an error saying %q", err, tc.want)
			}
			settings, _ := json.Marshal(tc.sink)
			if _, err := flows.BuildSink(flows.ConnectorConfig{Type: sqlconn.Name, Settings: settings}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BuildSink(%s): %v, want an error saying %q", settings, err, tc.want)
			}
			var n int64
			db.Table("backups").Count(&n)
			if n != 0 {
				t.Errorf("a rejected sink wrote %d rows", n)
			}
		})
	}

	for _, tc := range []struct {
		name string
		src  *sqlconn.Source
		want string
	}{
		{"no table", &sqlconn.Source{}, "Table is required"},
		{"three cursor columns", &sqlconn.Source{Table: "backups", Cursor: []string{"a", "b", "c"}}, "at most two"},
	} {
		t.Run("source/"+tc.name, func(t *testing.T) {
			if _, _, _, err := tc.src.Next(ctx, db, "", 10); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Next: %v, want an error saying %q", err, tc.want)
			}
			settings, _ := json.Marshal(tc.src)
			if _, err := flows.BuildSource(flows.ConnectorConfig{Type: sqlconn.Name, Settings: settings}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BuildSource(%s): %v, want an error saying %q", settings, err, tc.want)
			}
		})
	}

	t.Run("malformed settings", func(t *testing.T) {
		for _, raw := range []string{`{"table": 42}`, `[`, `"users"`} {
			if _, err := flows.BuildSource(flows.ConnectorConfig{Type: sqlconn.Name, Settings: json.RawMessage(raw)}); err == nil || !strings.Contains(err.Error(), "sql source settings") {
				t.Errorf("BuildSource(%s): %v, want a settings error", raw, err)
			}
			if _, err := flows.BuildSink(flows.ConnectorConfig{Type: sqlconn.Name, Settings: json.RawMessage(raw)}); err == nil || !strings.Contains(err.Error(), "sql sink settings") {
				t.Errorf("BuildSink(%s): %v, want a settings error", raw, err)
			}
		}
	})

	t.Run("bad range bounds", func(t *testing.T) {
		src := &sqlconn.Source{Table: "backups", Key: "user_id"}
		if _, err := src.Read(ctx, db, "not a key", ""); err == nil {
			t.Error("Read with a malformed lo: no error")
		}
		if _, _, _, err := src.Next(ctx, db, "[1", 10); err == nil {
			t.Error("Next with a malformed lo: no error")
		}
	})
}

// userSync is the flow of the flow tests: active users with a score of at
// least minScore, copied into backups by upsert.
func userSync(src *sqlconn.Source) flows.Flow {
	return flows.Flow{
		Name:   "test_user_sync",
		Source: src,
		Transforms: []flows.Transform{
			flows.Map("to_backup", func(r flows.Record) (flows.Record, error) {
				return flows.Record{
					"user_id":         r["id"],
					"email":           strings.ToUpper(r["email"].(string)),
					"score":           r["score"],
					"user_updated_at": r["updated_at"],
				}, nil
			}),
			flows.Filter("drop_ten", func(r flows.Record) bool { return r["user_id"] != int64(100) }),
		},
		Sink: &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}},
	}
}

// runPipeline plans p from its start with Next and processes every range,
// each in a transaction of its own (tx nil) or of the caller's.
func runPipeline(t *testing.T, db *gorm.DB, p engine.Pipeline, watermark string, size int, ownTx bool) (store.Result, string) {
	t.Helper()
	ctx := context.Background()
	var total store.Result
	lo := p.Start(watermark)
	for {
		hi, _, ok, err := p.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
		}
		if !ok {
			return total, lo
		}
		var res store.Result
		if ownTx {
			err = db.Transaction(func(tx *gorm.DB) error {
				res, err = p.Process(ctx, tx, lo, hi)
				return err
			})
		} else {
			res, err = p.Process(ctx, nil, lo, hi)
		}
		if err != nil {
			t.Fatalf("Process(%q, %q]: %v", lo, hi, err)
		}
		total.RowsRead += res.RowsRead
		total.RowsWritten += res.RowsWritten
		total.RowsSkipped += res.RowsSkipped
		lo = hi
	}
}

func TestFlow(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		users := seed(t, db, 25)
		src := &sqlconn.Source{Table: "users", Where: "active = ? AND score >= ?", Args: []any{true, 5}}
		job, err := flows.New(userSync(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := job.Open(ctx, engine.Env{DB: db}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Incremental() || p.Start(`[5]`) != "" {
			t.Errorf("a full flow is incremental (%v) or starts at %q", p.Incremental(), p.Start(`[5]`))
		}
		n, estimated, err := p.Count(ctx)
		inScope := idsOf(users, func(u user) bool { return u.Active && u.Score >= 5 })
		if err != nil || estimated || n != int64(len(inScope)) {
			t.Errorf("Count = %d, estimated %v, %v; want exactly %d", n, estimated, err, len(inScope))
		}

		var want []backup
		for _, id := range sortedIDs(inScope) {
			if id == 100 {
				continue
			}
			i := id / 10
			want = append(want, backup{UserID: id, Email: ptr(strings.ToUpper(fmt.Sprintf("user%03d@example.com", i))), Score: ptr(i)})
		}
		for _, ownTx := range []bool{false, true} {
			res, _ := runPipeline(t, db, p, "", 4, ownTx)
			wantRes := store.Result{RowsRead: int64(len(inScope)), RowsWritten: int64(len(want)), RowsSkipped: 1}
			if diff := cmp.Diff(wantRes, res); diff != "" {
				t.Errorf("own transaction %v: totals (-want +got):\n%s", ownTx, diff)
			}
			// Running twice (redelivery) leaves the same rows.
			if diff := cmp.Diff(want, backups(t, db)); diff != "" {
				t.Errorf("own transaction %v: backups (-want +got):\n%s", ownTx, diff)
			}
		}

		t.Run("a rolled back transaction writes nothing", func(t *testing.T) {
			if err := db.Exec("DELETE FROM backups").Error; err != nil {
				t.Fatal(err)
			}
			hi, _, _, err := p.Next(ctx, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			errRollback := fmt.Errorf("checkpoint failed")
			err = db.Transaction(func(tx *gorm.DB) error {
				if _, err := p.Process(ctx, tx, "", hi); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				t.Fatalf("transaction: %v", err)
			}
			if got := backups(t, db); len(got) != 0 {
				t.Errorf("backups after rollback = %v, want none", got)
			}
		})

		t.Run("incremental from a watermark", func(t *testing.T) {
			if err := db.Exec("DELETE FROM backups").Error; err != nil {
				t.Fatal(err)
			}
			inc := *src
			inc.Cursor = []string{"updated_at", "id"}
			job, err := flows.New(userSync(&inc))
			if err != nil {
				t.Fatal(err)
			}
			p, err := job.Open(ctx, engine.Env{DB: db}, json.RawMessage(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if !p.Incremental() {
				t.Fatal("a flow with a cursor source is not incremental")
			}
			// Everything up to minute 3 was delivered by an earlier run.
			wm, _ := keyset.Encode(keyset.Key{t0.Add(3 * time.Minute), int64(1 << 40)})
			res, last := runPipeline(t, db, p, wm, 2, false)
			var wantIDs []int64
			for _, id := range sortedIDs(inScope) {
				if (id/10)%5 == 4 && id != 100 {
					wantIDs = append(wantIDs, id)
				}
			}
			var gotIDs []int64
			for _, b := range backups(t, db) {
				gotIDs = append(gotIDs, b.UserID)
			}
			if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
				t.Errorf("rows copied after watermark %s (-want +got):\n%s", wm, diff)
			}
			if res.RowsWritten != int64(len(wantIDs)) {
				t.Errorf("wrote %d, want %d", res.RowsWritten, len(wantIDs))
			}
			// Nothing changed since: the next run from the last key moves nothing.
			res, _ = runPipeline(t, db, p, last, 2, false)
			if res.RowsRead != 0 {
				t.Errorf("a run from the last watermark %s read %d rows, want 0", last, res.RowsRead)
			}
		})

		t.Run("params are refused", func(t *testing.T) {
			if _, err := job.Open(ctx, engine.Env{DB: db}, json.RawMessage(`{"x":1}`)); err == nil {
				t.Error("Open with a param a flow does not have: no error")
			}
			if _, err := job.Open(ctx, engine.Env{}, nil); err == nil {
				t.Error("Open without a database: no error")
			}
		})
	})
}

// TestBuildFromConfig: a flow's stored configuration rebuilds connectors
// that read and write what the flow's own connectors do.
func TestBuildFromConfig(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		seed(t, db, 20)
		src := &sqlconn.Source{
			Table: "users", Columns: []string{"id", "email", "score", "updated_at"},
			Where: "active = ? AND score >= ? AND email <> ?", Args: []any{true, 3, "nobody"},
			Cursor: []string{"updated_at", "id"},
		}
		sink := &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}, ChunkSize: 7}
		f := userSync(src)
		f.Sink = sink
		f.Runtime = flows.Heartbeat{Interval: time.Minute}
		raw, err := flows.Describe(f)
		if err != nil {
			t.Fatal(err)
		}
		job, err := flows.New(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := job.Definition().Config; string(got) != string(raw) {
			t.Errorf("stored config %s, want Describe's %s", got, raw)
		}
		var cfg flows.Config
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Source.Type != "sql" || cfg.Sink.Type != "sql" || cfg.Runtime != "every 1m0s" ||
			!cmp.Equal(cfg.Transforms, []string{"to_backup", "drop_ten"}) {
			t.Errorf("config = %s", raw)
		}

		rsrc, err := flows.BuildSource(cfg.Source)
		if err != nil {
			t.Fatalf("BuildSource(%s): %v", cfg.Source.Settings, err)
		}
		rsink, err := flows.BuildSink(cfg.Sink)
		if err != nil {
			t.Fatalf("BuildSink(%s): %v", cfg.Sink.Settings, err)
		}
		if diff := cmp.Diff(sink, rsink); diff != "" {
			t.Errorf("rebuilt sink (-want +got):\n%s", diff)
		}
		if !rsrc.Incremental() || rsrc.Connector() != "sql" {
			t.Errorf("rebuilt source: incremental %v, connector %q", rsrc.Incremental(), rsrc.Connector())
		}

		// Same plan, same records.
		for lo := ""; ; {
			hi, more, ok, err := src.Next(ctx, db, lo, 4)
			if err != nil {
				t.Fatal(err)
			}
			rhi, rmore, rok, err := rsrc.Next(ctx, db, lo, 4)
			if err != nil {
				t.Fatalf("rebuilt source Next(%q): %v", lo, err)
			}
			if rhi != hi || rmore != more || rok != ok {
				t.Fatalf("Next(%q): rebuilt source gives %q %v %v, original %q %v %v", lo, rhi, rmore, rok, hi, more, ok)
			}
			if !ok {
				break
			}
			want, err := src.Read(ctx, db, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rsrc.Read(ctx, db, lo, hi)
			if err != nil {
				t.Fatalf("rebuilt source Read(%q, %q]: %v", lo, hi, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read(%q, %q] rebuilt (-original +rebuilt):\n%s", lo, hi, diff)
			}
			lo = hi
		}
		n, _, err := src.Count(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		rn, _, err := rsrc.Count(ctx, db)
		if err != nil || rn != n {
			t.Errorf("rebuilt source counts %d (%v), original %d", rn, err, n)
		}

		if _, err := rsink.Write(ctx, db, []flows.Record{{"user_id": int64(1), "email": "a"}}); err != nil {
			t.Errorf("rebuilt sink Write: %v", err)
		}

		// Integer args survive the JSON round trip exactly, beyond 2^53 too
		// (snowflake ids).
		const big = int64(1<<53 + 1)
		if err := db.Exec("INSERT INTO users (id, email, active, score, updated_at) VALUES (?, ?, ?, ?, ?)", big, "big@example.com", true, 1, t0).Error; err != nil {
			t.Fatal(err)
		}
		bigSrc := &sqlconn.Source{Table: "users", Where: "id = ? AND email <> ?", Args: []any{big, "x"}}
		settings, err := json.Marshal(bigSrc)
		if err != nil {
			t.Fatal(err)
		}
		rbig, err := flows.BuildSource(flows.ConnectorConfig{Type: sqlconn.Name, Settings: settings})
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]flows.Source{"original": bigSrc, "rebuilt": rbig} {
			if got, _ := readAll(t, db, s, "", 10); !cmp.Equal(got, []int64{big}) {
				t.Errorf("%s source with arg %d (settings %s) read %v, want [%d]", name, big, settings, got, big)
			}
		}

		for _, c := range []flows.ConnectorConfig{{Type: "nope", Settings: cfg.Source.Settings}} {
			if _, err := flows.BuildSource(c); err == nil || !strings.Contains(err.Error(), `unknown source connector "nope"`) || !strings.Contains(err.Error(), "sql") {
				t.Errorf("BuildSource of an unknown connector: %v", err)
			}
			if _, err := flows.BuildSink(c); err == nil || !strings.Contains(err.Error(), `unknown sink connector "nope"`) {
				t.Errorf("BuildSink of an unknown connector: %v", err)
			}
		}
	})
}
