package sqlconn_test

import (
	"context"
	"encoding/json"
	"errors"
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
// live builds a source configuration on db.
func live(t *testing.T, db *gorm.DB, cfg flows.SourceConfig) flows.Source {
	t.Helper()
	src, err := cfg.Build(context.Background(), engine.NewResources(db, nil, nil))
	if err != nil {
		t.Fatalf("build source %+v: %v", cfg, err)
	}
	return src
}

// liveSink builds a sink configuration on db.
func liveSink(t *testing.T, db *gorm.DB, cfg flows.SinkConfig) flows.Sink {
	t.Helper()
	s, err := cfg.Build(context.Background(), engine.NewResources(db, nil, nil))
	if err != nil {
		t.Fatalf("build sink %+v: %v", cfg, err)
	}
	return s
}

func readAll(t *testing.T, db *gorm.DB, cfg flows.SourceConfig, lo string, size int) (ids []int64, batches int) {
	t.Helper()
	ctx := context.Background()
	src := live(t, db, cfg)
	for {
		split, err := src.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
		}
		hi, more := split.Hi, !split.Last
		if hi == "" {
			return ids, batches
		}
		recs, err := src.Read(ctx, lo, hi)
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
				if live(t, db, tc.src).Resumes() {
					t.Error("a source without Cursor resumes from the watermark")
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
				n, estimated, err := live(t, db, tc.src).(flows.Counter).Count(ctx)
				if err != nil || estimated || n != int64(len(tc.want)) {
					t.Errorf("Count = %d, estimated %v, %v; want exactly %d", n, estimated, err, len(tc.want))
				}
			})
		}

		t.Run("string key and columns", func(t *testing.T) {
			src := live(t, db, &sqlconn.Source{Table: "users", Key: "email", Columns: []string{"email", "score"}, Where: "active = ?", Args: []any{true}})
			var emails []string
			lo := ""
			for {
				split, err := src.Next(ctx, lo, 5)
				if err != nil {
					t.Fatal(err)
				}
				hi := split.Hi
				if hi == "" {
					break
				}
				recs, err := src.Read(ctx, lo, hi)
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
		if !live(t, db, src).Resumes() {
			t.Fatal("a source with a Cursor does not resume from the watermark")
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
		for lo, ls := "", live(t, db, src); ; {
			split, err := ls.Next(ctx, lo, 7)
			if err != nil {
				t.Fatal(err)
			}
			if split.Hi == "" {
				break
			}
			last, lo = split.Hi, split.Hi
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
			n, err := liveSink(t, db, s).Write(ctx, &flows.Batch{Records: recs})
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
			n, err := liveSink(t, db, &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}}).Write(ctx, &flows.Batch{})
			if n != 0 || err != nil {
				t.Errorf("Write(nil) = %d, %v; want 0, nil", n, err)
			}
		})

		t.Run("a failing write is an error naming the table", func(t *testing.T) {
			_, err := liveSink(t, db, &sqlconn.Sink{Table: "backups", Mode: sqlconn.Insert}).Write(ctx, &flows.Batch{Records: []flows.Record{{"no_such_column": 1}}})
			if err == nil || !strings.Contains(err.Error(), "backups") {
				t.Errorf("Write of an unknown column: %v, want an error naming the table", err)
			}
		})
	})
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		sink      *sqlconn.Sink
		wantField string
		want      string
	}{
		{"no table", &sqlconn.Sink{Mode: sqlconn.Insert}, "table", "is required (or model)"},
		{"table and model", &sqlconn.Sink{Table: "t", Model: "m", Mode: sqlconn.Insert}, "model", "not both"},
		{"upsert without key", &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert}, "key", "is required for mode upsert"},
		{"update without key", &sqlconn.Sink{Table: "backups", Mode: sqlconn.Update}, "key", "is required for mode update"},
		{"unknown mode", &sqlconn.Sink{Table: "backups", Mode: "replace"}, "mode", `must be "insert", "upsert" or "update", got "replace"`},
		{"no mode", &sqlconn.Sink{Table: "backups"}, "mode", `got ""`},
		{"bad key", &sqlconn.Sink{Table: "backups", Mode: sqlconn.Upsert, Key: []string{"id; DROP TABLE x"}}, "key", "is not a column name"},
		{"injected table", &sqlconn.Sink{Table: "backups; DROP TABLE users", Mode: sqlconn.Insert}, "table", "is not a table name"},
		{"negative chunk", &sqlconn.Sink{Table: "backups", Mode: sqlconn.Insert, ChunkSize: -1}, "chunk_size", "must not be negative"},
		{"unknown model", &sqlconn.Sink{Model: "Nope", Mode: sqlconn.Insert}, "model", `"Nope" is not registered`},
	} {
		t.Run("sink/"+tc.name, func(t *testing.T) {
			// Registration refuses it, naming the field under "sink".
			_, err := flows.New(flows.Flow{Name: "bad", Source: &sqlconn.Source{Table: "users"}, Sink: tc.sink})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != "sink."+tc.wantField || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v, want field sink.%s saying %q", err, tc.wantField, tc.want)
			}
			// So does decoding its stored settings.
			settings, _ := json.Marshal(tc.sink)
			if _, err := flows.DecodeSink(flows.ConnectorConfig{Kind: sqlconn.Kind, Settings: settings}); !errors.As(err, &fe) || fe.Field != "sink."+tc.wantField {
				t.Errorf("DecodeSink(%s): %v, want field sink.%s", settings, err, tc.wantField)
			}
		})
	}

	for _, tc := range []struct {
		name      string
		src       *sqlconn.Source
		wantField string
		want      string
	}{
		{"no table", &sqlconn.Source{}, "table", "is required"},
		{"three cursor columns", &sqlconn.Source{Table: "backups", Cursor: []string{"a", "b", "c"}}, "cursor", "at most two"},
		{"args without where", &sqlconn.Source{Table: "backups", Args: []any{1}}, "args", "without where"},
		{"args do not match placeholders", &sqlconn.Source{Table: "backups", Where: "a = ? AND b = ?", Args: []any{1}}, "args", "2 placeholders but 1 args"},
		{"scope without model", &sqlconn.Source{Table: "backups", Scope: "active"}, "scope", "needs a model"},
		{"unknown model", &sqlconn.Source{Model: "Nope"}, "model", `"Nope" is not registered`},
		{"unknown scope", &sqlconn.Source{Model: "TestUser", Scope: "nope"}, "scope", `has no scope "nope" (scopes: active, high_score)`},
		{"injected column", &sqlconn.Source{Table: "backups", Columns: []string{"email", "1; DROP TABLE users"}}, "columns", "is not a column name"},
		{"injected table", &sqlconn.Source{Table: "users u JOIN secrets s ON true"}, "table", "is not a table name"},
	} {
		t.Run("source/"+tc.name, func(t *testing.T) {
			_, err := flows.New(flows.Flow{Name: "bad", Source: tc.src, Sink: &sqlconn.Sink{Table: "t", Mode: sqlconn.Insert}})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != "source."+tc.wantField || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v, want field source.%s saying %q", err, tc.wantField, tc.want)
			}
			settings, _ := json.Marshal(tc.src)
			if _, err := flows.DecodeSource(flows.ConnectorConfig{Kind: sqlconn.Kind, Settings: settings}); !errors.As(err, &fe) || fe.Field != "source."+tc.wantField {
				t.Errorf("DecodeSource(%s): %v, want field source.%s", settings, err, tc.wantField)
			}
		})
	}

	t.Run("malformed settings", func(t *testing.T) {
		for raw, field := range map[string]string{`{"table": 42}`: "source.table", `[`: "source", `"users"`: "source", `{"tabel": "users"}`: "source.tabel"} {
			_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: sqlconn.Kind, Settings: json.RawMessage(raw)})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("DecodeSource(%s): %v, want a field error for %s", raw, err, field)
			}
		}
	})

	t.Run("unknown connection", func(t *testing.T) {
		_, err := (&sqlconn.Source{Table: "users", Connection: "replica"}).Build(context.Background(), engine.NewResources(nil, map[string]string{"warehouse": "postgres://x"}, nil))
		if !errors.Is(err, engine.ErrUnknownConnection) || !strings.Contains(err.Error(), "warehouse") {
			t.Errorf("Build on an unknown connection: %v, want ErrUnknownConnection naming the known ones", err)
		}
	})

	t.Run("bad range bounds", func(t *testing.T) {
		db, err := sqlstore.OpenDB(context.Background(), testenv.SQLiteURL(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		})
		ctx := context.Background()
		src := live(t, db, &sqlconn.Source{Table: "backups", Key: "user_id"})
		if _, err := src.Read(ctx, "not a key", ""); err == nil {
			t.Error("Read with a malformed lo: no error")
		}
		if _, err := src.Next(ctx, "[1", 10); err == nil {
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

// TestBuildFromConfig: a flow's stored configuration decodes into
// connectors that read and write what the flow's own connectors do.
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
		var cfg flows.Config
		if err := json.Unmarshal(job.Definition().Config, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Source.Kind != "sql" || cfg.Sink.Kind != "sql" || cfg.Runtime != "every 1m0s" ||
			!cmp.Equal(cfg.Transforms, []string{"to_backup", "drop_ten"}) || cfg.Guarantee != flows.Idempotent || !cfg.Transactional {
			t.Errorf("config = %s (Describe: %s)", job.Definition().Config, raw)
		}

		rsrcCfg, err := flows.DecodeSource(cfg.Source)
		if err != nil {
			t.Fatalf("DecodeSource(%s): %v", cfg.Source.Settings, err)
		}
		rsinkCfg, err := flows.DecodeSink(cfg.Sink)
		if err != nil {
			t.Fatalf("DecodeSink(%s): %v", cfg.Sink.Settings, err)
		}
		if diff := cmp.Diff(flows.SinkConfig(sink), rsinkCfg); diff != "" {
			t.Errorf("rebuilt sink (-want +got):\n%s", diff)
		}
		orig, rsrc := live(t, db, src), live(t, db, rsrcCfg)
		if !rsrc.Resumes() || rsrc.Shape() != flows.Keyed {
			t.Errorf("rebuilt source: resumes %v, shape %q", rsrc.Resumes(), rsrc.Shape())
		}

		// Same plan, same records.
		for lo := ""; ; {
			split, err := orig.Next(ctx, lo, 4)
			if err != nil {
				t.Fatal(err)
			}
			rsplit, err := rsrc.Next(ctx, lo, 4)
			if err != nil {
				t.Fatalf("rebuilt source Next(%q): %v", lo, err)
			}
			if rsplit != split {
				t.Fatalf("Next(%q): rebuilt source gives %+v, original %+v", lo, rsplit, split)
			}
			if split.Hi == "" {
				break
			}
			want, err := orig.Read(ctx, lo, split.Hi)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rsrc.Read(ctx, lo, split.Hi)
			if err != nil {
				t.Fatalf("rebuilt source Read(%q, %q]: %v", lo, split.Hi, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read(%q, %q] rebuilt (-original +rebuilt):\n%s", lo, split.Hi, diff)
			}
			lo = split.Hi
		}
		n, _, err := orig.(flows.Counter).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rn, _, err := rsrc.(flows.Counter).Count(ctx)
		if err != nil || rn != n {
			t.Errorf("rebuilt source counts %d (%v), original %d", rn, err, n)
		}

		if _, err := liveSink(t, db, rsinkCfg).Write(ctx, &flows.Batch{Records: []flows.Record{{"user_id": int64(1), "email": "a"}}}); err != nil {
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
		rbig, err := flows.DecodeSource(flows.ConnectorConfig{Kind: sqlconn.Kind, Settings: settings})
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]flows.SourceConfig{"original": bigSrc, "rebuilt": rbig} {
			if got, _ := readAll(t, db, s, "", 10); !cmp.Equal(got, []int64{big}) {
				t.Errorf("%s source with arg %d (settings %s) read %v, want [%d]", name, big, settings, got, big)
			}
		}
	})
}

// TestUser is a gorm model registered with two named scopes, as a user
// registers theirs for model-and-scope sources.
type TestUser struct {
	ID        int64 `gorm:"primaryKey"`
	Email     string
	Active    bool
	Score     int
	UpdatedAt time.Time
}

func (TestUser) TableName() string { return "users" }

var _ = sqlconn.RegisterModel("TestUser", &TestUser{}, map[string]sqlconn.Scope{
	"active":     func(db *gorm.DB) *gorm.DB { return db.Where("active = ?", true) },
	"high_score": func(db *gorm.DB) *gorm.DB { return db.Where("score >= ?", 20) },
})

type TestBackup struct {
	UserID int64 `gorm:"primaryKey"`
	Email  *string
	Score  *int64
}

func (TestBackup) TableName() string { return "backups" }

var _ = sqlconn.RegisterModel("TestBackup", &TestBackup{}, nil)

// TestModelAndScope: a source from a registered gorm model and a named
// scope reads what the scope selects; a sink by model writes the model's
// table.
func TestModelAndScope(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		users := seed(t, db, 30)
		for scope, keep := range map[string]func(user) bool{
			"active":     func(u user) bool { return u.Active },
			"high_score": func(u user) bool { return u.Score >= 20 },
			"":           func(user) bool { return true },
		} {
			got, _ := readAll(t, db, &sqlconn.Source{Model: "TestUser", Scope: scope}, "", 4)
			if diff := cmp.Diff(sortedIDs(idsOf(users, keep)), got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("model TestUser scope %q: ids (-want +got):\n%s", scope, diff)
			}
		}
		// Scope and where combine.
		got, _ := readAll(t, db, &sqlconn.Source{Model: "TestUser", Scope: "active", Where: "score < ?", Args: []any{5}}, "", 100)
		if diff := cmp.Diff(sortedIDs(idsOf(users, func(u user) bool { return u.Active && u.Score < 5 })), got); diff != "" {
			t.Errorf("scope and where: ids (-want +got):\n%s", diff)
		}
		n, _, err := live(t, db, &sqlconn.Source{Model: "TestUser", Scope: "high_score"}).(flows.Counter).Count(ctx)
		if err != nil || n != 11 {
			t.Errorf("Count of scope high_score = %d, %v; want 11", n, err)
		}
		s := liveSink(t, db, &sqlconn.Sink{Model: "TestBackup", Mode: sqlconn.Upsert, Key: []string{"user_id"}})
		if _, err := s.Write(ctx, &flows.Batch{Records: records(1, 3, "m%d@x", 4)}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(backupsOf(1, 3, "m%d@x", 4), backups(t, db)); diff != "" {
			t.Errorf("sink by model: backups (-want +got):\n%s", diff)
		}
	})
}

// TestSinkUpdate: update mode changes existing rows by key, inserts
// nothing, and a redelivered batch changes nothing more.
func TestSinkUpdate(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		ins := liveSink(t, db, &sqlconn.Sink{Table: "backups", Mode: sqlconn.Insert})
		if _, err := ins.Write(ctx, &flows.Batch{Records: records(1, 5, "u%d@x", 1)}); err != nil {
			t.Fatal(err)
		}
		upd := liveSink(t, db, &sqlconn.Sink{Table: "backups", Mode: sqlconn.Update, Key: []string{"user_id"}})
		if upd.Guarantee() != flows.Idempotent {
			t.Errorf("update sink guarantee %q, want idempotent", upd.Guarantee())
		}
		for range 2 {
			n, err := upd.Write(ctx, &flows.Batch{Records: []flows.Record{
				{"user_id": int64(2), "score": int64(9)}, {"user_id": int64(4), "score": int64(9), "email": "four@x"}, {"user_id": int64(99), "score": int64(9)},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if n > 2 {
				t.Errorf("update wrote %d rows, want at most 2 (the third has no row)", n)
			}
		}
		want := backupsOf(1, 5, "u%d@x", 1)
		want[1].Score = ptr(int64(9))
		want[3].Score, want[3].Email = ptr(int64(9)), ptr("four@x")
		if diff := cmp.Diff(want, backups(t, db)); diff != "" {
			t.Errorf("backups after update (-want +got):\n%s", diff)
		}
		_, err := upd.Write(ctx, &flows.Batch{Records: []flows.Record{{"score": int64(1)}}})
		if err == nil || !strings.Contains(err.Error(), "has no key user_id") {
			t.Errorf("update of a record without its key: %v", err)
		}
	})
}

// TestAcrossDatabases: a flow reads MariaDB through a named connection and
// writes PostgreSQL through another, built as a worker builds it.
func TestAcrossDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	myURL, pgURL := testenv.MySQLURL(t), testenv.PostgresURL(t)
	my, err := sqlstore.OpenDB(ctx, myURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := sqlstore.OpenDB(ctx, pgURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, db := range []*gorm.DB{my, pg} {
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		}
	})
	if err := my.Exec("CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(100) NOT NULL, active BOOLEAN NOT NULL, score INT NOT NULL, updated_at DATETIME(6) NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("CREATE TABLE backups (user_id BIGINT PRIMARY KEY, email VARCHAR(100), score INT, user_updated_at TIMESTAMPTZ NULL)").Error; err != nil {
		t.Fatal(err)
	}
	users := seed(t, my, 40)

	f := userSync(&sqlconn.Source{Connection: "replica", Table: "users", Where: "active = ?", Args: []any{true}, Cursor: []string{"updated_at", "id"}})
	f.Sink = &sqlconn.Sink{Connection: "warehouse", Table: "backups", Mode: sqlconn.Upsert, Key: []string{"user_id"}}
	job, err := flows.New(f)
	if err != nil {
		t.Fatal(err)
	}
	var cfg flows.Config
	if err := json.Unmarshal(job.Definition().Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Transactional || cfg.Guarantee != flows.Idempotent {
		t.Errorf("a sink on a named connection: transactional %v, guarantee %q; want idempotent only", cfg.Transactional, cfg.Guarantee)
	}
	// The process's application database is a third one (SQLite).
	app, err := sqlstore.OpenDB(ctx, testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	res := engine.NewResources(app, map[string]string{"replica": myURL, "warehouse": pgURL}, nil)
	t.Cleanup(func() { res.Close() })
	p, err := job.Open(ctx, engine.Env{DB: app, Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.WritesTo() == app || p.WritesTo() == nil {
		t.Errorf("the pipeline writes to %v; want the warehouse connection, not the application database", p.WritesTo())
	}
	res1, _ := runPipeline(t, pg, p, "", 7, false)
	active := idsOf(users, func(u user) bool { return u.Active })
	if res1.RowsRead != int64(len(active)) {
		t.Errorf("read %d rows from MariaDB, want %d", res1.RowsRead, len(active))
	}
	var got []int64
	for _, b := range backups(t, pg) {
		got = append(got, b.UserID)
	}
	var want []int64
	for _, id := range sortedIDs(active) {
		if id != 100 {
			want = append(want, id)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows in PostgreSQL (-want +got):\n%s", diff)
	}
}
