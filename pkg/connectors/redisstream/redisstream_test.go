package redisstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/connectors/connectortest"
	"github.com/dripflow/dripflow/pkg/connectors/redisstream"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// setup returns a client, a stream key unique to the test and resources
// whose "redis" connection is the test Redis.
func setup(t *testing.T) (*redis.Client, string, *engine.Resources) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	res := engine.NewResources(nil, map[string]string{"redis": testenv.RedisURL(t)}, nil)
	t.Cleanup(func() { res.Close() })
	return rdb, prefix + "events", res
}

// addEntries appends n entries {"n": i, "kind": …} and returns their ids.
func addEntries(t *testing.T, rdb *redis.Client, stream string, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []any{"n", i, "kind", fmt.Sprintf("k%d", i%3)}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func TestSourceReadsRanges(t *testing.T) {
	t.Parallel()
	rdb, stream, res := setup(t)
	ids := addEntries(t, rdb, stream, 0, 23)
	src := connectortest.Build(t, res, &redisstream.Source{Stream: stream})
	if src.Shape() != flows.Offset || !src.Resumes() {
		t.Errorf("shape %q, resumes %v; want an offset source that resumes", src.Shape(), src.Resumes())
	}
	var want []flows.Record
	for i, id := range ids {
		want = append(want, flows.Record{"_id": id, "n": fmt.Sprint(i), "kind": fmt.Sprintf("k%d", i%3)})
	}
	for _, size := range []int{1, 4, 23, 100} {
		got, ranges := connectortest.ReadAll(t, src, "", size, "_id")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("size %d: records (-want +got):\n%s", size, diff)
		}
		if n := (23 + size - 1) / size; len(ranges) != n {
			t.Errorf("size %d: %d ranges, want %d", size, len(ranges), n)
		}
	}
	// From a watermark in the middle: only what follows it.
	got, _ := connectortest.ReadAll(t, src, ids[9], 5, "_id")
	if diff := cmp.Diff(want[10:], got); diff != "" {
		t.Errorf("from %s (-want +got):\n%s", ids[9], diff)
	}
	// At the end: nothing, until entries arrive.
	if split, err := src.Next(context.Background(), ids[22], 10); err != nil || split.Hi != "" {
		t.Errorf("Next at the last entry = %+v, %v; want nothing", split, err)
	}
	more := addEntries(t, rdb, stream, 23, 3)
	split, err := src.Next(context.Background(), ids[22], 10)
	if err != nil || split.Hi != more[2] || !split.Last {
		t.Errorf("Next after 3 new entries = %+v, %v; want hi %s, last", split, err, more[2])
	}

	t.Run("id field", func(t *testing.T) {
		src := connectortest.Build(t, res, &redisstream.Source{Stream: stream, IDField: "entry"})
		recs, err := src.Read(context.Background(), "", ids[0])
		if err != nil || len(recs) != 1 || recs[0]["entry"] != ids[0] || recs[0]["_id"] != nil {
			t.Errorf("Read with id_field entry = %v, %v", recs, err)
		}
	})
	t.Run("bad positions", func(t *testing.T) {
		if _, err := src.Read(context.Background(), "x", ids[0]); err == nil {
			t.Error("Read from a position that is not an entry id: no error")
		}
		if _, err := src.Next(context.Background(), "[1]", 1); err == nil {
			t.Error("Next from a position that is not an entry id: no error")
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		src := connectortest.Build(t, res, &redisstream.Source{Stream: stream + ":none"})
		if split, err := src.Next(context.Background(), "", 10); err != nil || split.Hi != "" {
			t.Errorf("Next on a missing stream = %+v, %v; want nothing", split, err)
		}
	})
}

type groupInfo struct {
	lastDelivered string
	pending       int64
}

func group(t *testing.T, rdb *redis.Client, stream, name string) groupInfo {
	t.Helper()
	gs, err := rdb.XInfoGroups(context.Background(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Name == name {
			return groupInfo{g.LastDeliveredID, g.Pending}
		}
	}
	t.Fatalf("no group %s on %s", name, stream)
	return groupInfo{}
}

// TestGroup: planning delivers a range to the group's consumer (pending),
// Ack acknowledges exactly the range, in any order, and a group behind the
// watermark moves forward.
func TestGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, stream, res := setup(t)
	ids := addEntries(t, rdb, stream, 0, 20)
	src := connectortest.Build(t, res, &redisstream.Source{Stream: stream, Group: "mirror"})
	if g := group(t, rdb, stream, "mirror"); g != (groupInfo{"0-0", 0}) {
		t.Fatalf("new group = %+v, want created at 0 with nothing pending", g)
	}
	// Plan three ranges of 5, as the scheduler does.
	lo := ""
	var ranges [][2]string
	for range 3 {
		split, err := src.Next(ctx, lo, 5)
		if err != nil {
			t.Fatal(err)
		}
		ranges = append(ranges, [2]string{lo, split.Hi})
		lo = split.Hi
	}
	if g := group(t, rdb, stream, "mirror"); g != (groupInfo{ids[14], 15}) {
		t.Errorf("after planning 15 entries the group is %+v, want last delivered %s, 15 pending", g, ids[14])
	}
	// Planning the same range again (a scheduler that lost its plan)
	// delivers nothing twice.
	if _, err := src.Next(ctx, ranges[1][0], 5); err != nil {
		t.Fatal(err)
	}
	if g := group(t, rdb, stream, "mirror"); g.pending != 15 {
		t.Errorf("replanning: %d pending, want 15", g.pending)
	}
	// Batches commit out of order: each Ack removes exactly its range.
	pendingIDs := func() []string {
		ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "mirror", Start: "-", End: "+", Count: 100}).Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			if p.Consumer != "dripflow" {
				t.Errorf("entry %s pending at consumer %s, want dripflow", p.ID, p.Consumer)
			}
			out = append(out, p.ID)
		}
		return out
	}
	ack := src.(flows.Acker)
	if err := ack.Ack(ctx, ranges[1][0], ranges[1][1]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(append([]string{}, ids[:5]...), ids[10:15]...), pendingIDs()); diff != "" {
		t.Errorf("pending after acking the second range (-want +got):\n%s", diff)
	}
	for _, r := range [][2]string{ranges[0], ranges[2], ranges[2]} {
		if err := ack.Ack(ctx, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := pendingIDs(); len(got) != 0 {
		t.Errorf("pending after every ack: %v, want none", got)
	}
	// A run starting at a watermark ahead of the group moves it forward,
	// never back; entries before the watermark are not delivered.
	if _, err := src.Next(ctx, ids[17], 5); err != nil {
		t.Fatal(err)
	}
	if g := group(t, rdb, stream, "mirror"); g != (groupInfo{ids[19], 2}) {
		t.Errorf("after planning from %s the group is %+v, want last delivered %s, 2 pending", ids[17], g, ids[19])
	}
	if _, err := src.Next(ctx, ids[2], 5); err != nil {
		t.Fatal(err)
	}
	if g := group(t, rdb, stream, "mirror"); g != (groupInfo{ids[19], 2}) {
		t.Errorf("planning behind the group moved it: %+v", g)
	}
	// A group destroyed while the flow runs is made again.
	if err := rdb.XGroupDestroy(ctx, stream, "mirror").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(ctx, ids[17], 5); err != nil {
		t.Errorf("Next after the group was destroyed: %v", err)
	}
	if g := group(t, rdb, stream, "mirror"); g != (groupInfo{ids[19], 2}) {
		t.Errorf("recreated group = %+v", g)
	}
}

func TestSinkDedupes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, stream, res := setup(t)
	prefix := stream + ":msgid:"
	build := func(cfg *redisstream.Sink) flows.Sink {
		t.Helper()
		cfg.DedupePrefix = prefix
		s, err := cfg.Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	batch := &flows.Batch{Flow: "f", Run: 1, Seq: 1}
	for i := range 600 {
		batch.Records = append(batch.Records, flows.Record{"order": int64(i), "name": fmt.Sprintf("o%d", i), "tags": []string{"a"}, "gone": nil})
	}
	s := build(&redisstream.Sink{Stream: stream, MessageIDField: "msg_id"})
	if s.Guarantee() != flows.Idempotent {
		t.Errorf("guarantee %q, want idempotent", s.Guarantee())
	}
	for attempt := range 2 {
		n, err := s.Write(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int64{0: 600, 1: 0}[attempt]; n != want {
			t.Errorf("write %d wrote %d, want %d", attempt+1, n, want)
		}
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 600 {
		t.Errorf("stream has %d entries after a redelivered batch, want 600", n)
	}
	first, err := rdb.XRangeN(ctx, stream, "-", "+", 1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"order": "0", "name": "o0", "tags": `["a"]`, "gone": "", "msg_id": "f/1/1/0"}
	if diff := cmp.Diff(want, first[0].Values); diff != "" {
		t.Errorf("first entry (-want +got):\n%s", diff)
	}
	if ttl := rdb.PTTL(ctx, prefix+"f/1/1/0").Val(); ttl <= 0 || ttl > redisstream.DefaultDedupeTTL {
		t.Errorf("dedupe key TTL %v, want at most %v", ttl, redisstream.DefaultDedupeTTL)
	}

	t.Run("by id field across batches, json, maxlen", func(t *testing.T) {
		other := stream + ":2"
		s := build(&redisstream.Sink{Stream: other, IDField: "order", JSONField: "data", MaxLen: 100})
		for seq := range 3 {
			// Every batch holds orders 0..299: another batch with the same
			// ids adds nothing.
			b := &flows.Batch{Flow: "f", Run: 2, Seq: int64(seq), Records: batch.Records[:300]}
			n, err := s.Write(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if seq > 0 && n != 0 {
				t.Errorf("batch %d with known ids wrote %d", seq, n)
			}
		}
		if n := rdb.XLen(ctx, other).Val(); n < 100 || n >= 300 {
			t.Errorf("stream trimmed to about 100 has %d entries", n)
		}
		last, err := rdb.XRevRangeN(ctx, other, "+", "-", 1).Result()
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(last[0].Values["data"].(string)), &rec); err != nil || rec["order"] != float64(299) {
			t.Errorf("last entry %v (%v), want order 299 as JSON", last[0].Values, err)
		}
	})
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	okSrc, okSink := &redisstream.Source{Stream: "s"}, &redisstream.Sink{Stream: "s"}
	for _, tc := range []struct {
		name  string
		src   *redisstream.Source
		sink  *redisstream.Sink
		field string
		want  string
	}{
		{"source without stream", &redisstream.Source{}, nil, "source.stream", "is required"},
		{"consumer without group", &redisstream.Source{Stream: "s", Consumer: "c"}, nil, "source.consumer", "needs a group"},
		{"group with a space", &redisstream.Source{Stream: "s", Group: "a b"}, nil, "source.group", "white space"},
		{"sink without stream", nil, &redisstream.Sink{}, "sink.stream", "is required"},
		{"negative max_len", nil, &redisstream.Sink{Stream: "s", MaxLen: -1}, "sink.max_len", "must not be negative"},
		{"bad dedupe_ttl", nil, &redisstream.Sink{Stream: "s", DedupeTTL: "forever"}, "sink.dedupe_ttl", "duration"},
		{"tiny dedupe_ttl", nil, &redisstream.Sink{Stream: "s", DedupeTTL: "1ms"}, "sink.dedupe_ttl", "at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flows.Flow{Name: "bad", Source: okSrc, Sink: okSink}
			var decode func() error
			if tc.src != nil {
				f.Source = tc.src
				settings, _ := json.Marshal(tc.src)
				decode = func() error {
					_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: redisstream.Kind, Settings: settings})
					return err
				}
			} else {
				f.Sink = tc.sink
				settings, _ := json.Marshal(tc.sink)
				decode = func() error {
					_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: redisstream.Kind, Settings: settings})
					return err
				}
			}
			var fe *flows.FieldError
			if _, err := flows.New(f); !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v, want field %s saying %q", err, tc.field, tc.want)
			}
			if err := decode(); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("decode: %v, want field %s", err, tc.field)
			}
		})
	}
	t.Run("unknown setting", func(t *testing.T) {
		_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: redisstream.Kind, Settings: json.RawMessage(`{"stream":"s","maxlen":5}`)})
		var fe *flows.FieldError
		if !errors.As(err, &fe) || fe.Field != "sink.maxlen" {
			t.Errorf("DecodeSink with a misspelt setting: %v", err)
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		_, err := (&redisstream.Source{Stream: "s", Connection: "events"}).Build(context.Background(), engine.NewResources(nil, map[string]string{"redis": "redis://x"}, nil))
		if !errors.Is(err, engine.ErrUnknownConnection) {
			t.Errorf("Build on an unknown connection: %v", err)
		}
	})
}

// runPipeline plans p from watermark with Next and processes every range
// (acknowledging it, as the worker does after the checkpoint); it returns
// the totals and the last position.
func runPipeline(t *testing.T, p engine.Pipeline, watermark string, size int) (store.Result, string) {
	t.Helper()
	ctx := context.Background()
	var total store.Result
	lo := p.Start(watermark)
	for seq := int64(1); ; seq++ {
		hi, _, ok, err := p.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
		}
		if !ok {
			return total, lo
		}
		res, err := p.(engine.BatchProcessor).ProcessBatch(ctx, nil, store.Batch{RunID: 1, Seq: seq, Lo: lo, Hi: hi})
		if err != nil {
			t.Fatalf("ProcessBatch(%q, %q]: %v", lo, hi, err)
		}
		if err := p.(engine.Acker).Ack(ctx, lo, hi); err != nil {
			t.Fatal(err)
		}
		total.RowsRead += res.RowsRead
		total.RowsWritten += res.RowsWritten
		lo = hi
	}
}

func openPG(t *testing.T) (*gorm.DB, string) {
	t.Helper()
	url := testenv.PostgresURL(t)
	db, err := sqlstore.OpenDB(context.Background(), url, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db, url
}

// TestFlowStreamToPostgres: a flow from a Redis stream, through its consumer
// group, into a PostgreSQL table by upsert, run twice as heartbeats do.
func TestFlowStreamToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, stream, _ := setup(t)
	pg, pgURL := openPG(t)
	if err := pg.Exec("CREATE TABLE events (entry_id TEXT PRIMARY KEY, n INT NOT NULL, kind TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	addEntries(t, rdb, stream, 0, 57)
	job, err := flows.New(flows.Flow{
		Name:       "stream_to_pg",
		Source:     &redisstream.Source{Connection: "events", Stream: stream, Group: "pg", IDField: "entry_id"},
		Transforms: []flows.Transform{flows.Filter("not_k2", func(r flows.Record) bool { return r["kind"] != "k2" })},
		Sink:       &sqlconn.Sink{Connection: "warehouse", Table: "events", Mode: sqlconn.Upsert, Key: []string{"entry_id"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := engine.NewResources(nil, map[string]string{"events": testenv.RedisURL(t), "warehouse": pgURL}, nil)
	t.Cleanup(func() { res.Close() })
	p, err := job.Open(ctx, engine.Env{Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		t.Helper()
		if err := pg.Table("events").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	total, last := runPipeline(t, p, "", 10)
	if total.RowsRead != 57 || count() != 38 {
		t.Errorf("first run read %d, table has %d rows; want 57 read, 38 rows (k2 filtered out)", total.RowsRead, count())
	}
	if g := group(t, rdb, stream, "pg"); g.pending != 0 || g.lastDelivered != last {
		t.Errorf("group after the run = %+v, want nothing pending, last delivered %s", g, last)
	}
	// Replaying the run (redelivered batches) changes nothing.
	runPipeline(t, p, "", 10)
	if count() != 38 {
		t.Errorf("after replay the table has %d rows, want 38", count())
	}
	// The next run goes on from the watermark.
	addEntries(t, rdb, stream, 57, 9)
	total, _ = runPipeline(t, p, last, 10)
	if total.RowsRead != 9 || count() != 44 {
		t.Errorf("second run read %d, table has %d rows; want 9 and 44", total.RowsRead, count())
	}
	var n int
	if err := pg.Raw("SELECT n FROM events ORDER BY n DESC LIMIT 1").Scan(&n).Error; err != nil || n != 64 {
		t.Errorf("highest n = %d (%v), want 64", n, err)
	}
}

// TestFlowPostgresToStream: a flow from a PostgreSQL table into a stream,
// each row once however often its batches run.
func TestFlowPostgresToStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, stream, _ := setup(t)
	pg, pgURL := openPG(t)
	if err := pg.Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, total INT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 45) g").Error; err != nil {
		t.Fatal(err)
	}
	job, err := flows.New(flows.Flow{
		Name:   "pg_to_stream",
		Source: &sqlconn.Source{Connection: "shop", Table: "orders"},
		Sink:   &redisstream.Sink{Stream: stream, IDField: "id", DedupePrefix: stream + ":ids:"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg flows.Config
	if err := json.Unmarshal(job.Definition().Config, &cfg); err != nil || cfg.Guarantee != flows.Idempotent || cfg.Sink.Kind != "redisstream" {
		t.Errorf("config %s (%v): want a redisstream sink, idempotent", job.Definition().Config, err)
	}
	res := engine.NewResources(nil, map[string]string{"redis": testenv.RedisURL(t), "shop": pgURL}, nil)
	t.Cleanup(func() { res.Close() })
	p, err := job.Open(ctx, engine.Env{Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		total, _ := runPipeline(t, p, "", 7)
		if want := map[int]int64{0: 45, 1: 0}[run]; total.RowsWritten != want {
			t.Errorf("run %d wrote %d entries, want %d", run+1, total.RowsWritten, want)
		}
	}
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 45 || entries[44].Values["id"] != "45" || entries[44].Values["total"] != "450" {
		t.Errorf("stream has %d entries, last %v; want 45 ending with order 45", len(entries), entries[len(entries)-1].Values)
	}
}

// TestOffsetConformance runs the offset sources' suite, with and without a
// consumer group.
func TestOffsetConformance(t *testing.T) {
	t.Parallel()
	for name, group := range map[string]string{"plain": "", "group": "conformance"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			connectortest.RunOffset(t, connectortest.Offset{
				Open: func(t *testing.T) (flows.Source, func(*testing.T, int, int) []string) {
					rdb, stream, res := setup(t)
					src := connectortest.Build(t, res, &redisstream.Source{Stream: stream, Group: group})
					return src, func(t *testing.T, from, n int) []string { return addEntries(t, rdb, stream, from, n) }
				},
				Number: func(t *testing.T, r flows.Record) int {
					n, err := strconv.Atoi(fmt.Sprint(r["n"]))
					if err != nil {
						t.Fatalf("record %v: %v", r, err)
					}
					return n
				},
				Position: func(r flows.Record) string { return fmt.Sprint(r["_id"]) },
			})
		})
	}
}

func TestIdempotentSinkConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunIdempotentSink(t, connectortest.IdempotentSink{
		Open: func(t *testing.T, idField string) (flows.Sink, func(*testing.T) int) {
			rdb, stream, res := setup(t)
			s, err := (&redisstream.Sink{Stream: stream, IDField: idField, DedupePrefix: stream + ":ids:"}).Build(context.Background(), res)
			if err != nil {
				t.Fatal(err)
			}
			return s, func(t *testing.T) int { return int(rdb.XLen(context.Background(), stream).Val()) }
		},
	})
}
