package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/connectors/connectortest"
	natsconn "github.com/dripflow/dripflow/pkg/connectors/nats"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// setup makes a stream of its own capturing "<name>.>" and returns its
// name, a JetStream client and resources whose "nats" connection is the
// test server.
func setup(t *testing.T) (string, jetstream.JetStream, *engine.Resources) {
	t.Helper()
	url := testenv.NATSURL(t)
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ToUpper(testenv.Name("DFT_"))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("create stream %s (is JetStream enabled?): %v", name, err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	res := engine.NewResources(nil, map[string]string{"nats": url}, nil)
	t.Cleanup(func() { res.Close() })
	return name, js, res
}

// publish publishes n JSON messages {"n": i}, even i on <stream>.orders and
// odd on <stream>.refunds, and returns their sequences.
func publish(t *testing.T, js jetstream.JetStream, stream string, from, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := from; i < from+n; i++ {
		subject := stream + ".orders"
		if i%2 == 1 {
			subject = stream + ".refunds"
		}
		ack, err := js.Publish(context.Background(), subject, []byte(fmt.Sprintf(`{"n": %d, "name": "o%d"}`, i, i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func orders(stream string, seqs []uint64, from int, every int) []flows.Record {
	var out []flows.Record
	for i := from; i < len(seqs); i += every {
		subject := stream + ".orders"
		if i%2 == 1 {
			subject = stream + ".refunds"
		}
		out = append(out, flows.Record{"n": int64(i), "name": fmt.Sprintf("o%d", i), "_seq": int64(seqs[i]), "_subject": subject})
	}
	return out
}

func TestSourceReadsRanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stream, js, res := setup(t)
	seqs := publish(t, js, stream, 0, 30)

	all := connectortest.Build(t, res, &natsconn.Source{Stream: stream})
	if all.Shape() != flows.Offset || !all.Resumes() {
		t.Errorf("shape %q, resumes %v; want an offset source that resumes", all.Shape(), all.Resumes())
	}
	for _, size := range []int{1, 7, 30, 100} {
		got, ranges := connectortest.ReadAll(t, all, "", size, "_seq")
		if diff := cmp.Diff(orders(stream, seqs, 0, 1), got); diff != "" {
			t.Errorf("whole stream, size %d (-want +got):\n%s", size, diff)
		}
		if n := (30 + size - 1) / size; len(ranges) != n {
			t.Errorf("size %d: %d ranges, want %d", size, len(ranges), n)
		}
	}
	filtered := connectortest.Build(t, res, &natsconn.Source{Stream: stream, Subject: stream + ".orders"})
	for _, size := range []int{1, 4, 15} {
		got, ranges := connectortest.ReadAll(t, filtered, "", size, "_seq")
		if diff := cmp.Diff(orders(stream, seqs, 0, 2), got); diff != "" {
			t.Errorf("orders only, size %d (-want +got):\n%s", size, diff)
		}
		if n := (15 + size - 1) / size; len(ranges) != n {
			t.Errorf("orders only, size %d: %d ranges, want %d", size, len(ranges), n)
		}
	}
	// From a watermark: what follows it only.
	got, _ := connectortest.ReadAll(t, filtered, strconv.FormatUint(seqs[9], 10), 4, "_seq")
	if diff := cmp.Diff(orders(stream, seqs, 10, 2), got); diff != "" {
		t.Errorf("orders after %d (-want +got):\n%s", seqs[9], diff)
	}
	// At the end: nothing, until messages arrive.
	last := strconv.FormatUint(seqs[29], 10)
	if split, err := filtered.Next(ctx, last, 5); err != nil || split.Hi != "" {
		t.Errorf("Next at the end = %+v, %v; want nothing", split, err)
	}
	more := publish(t, js, stream, 30, 4)
	if split, err := filtered.Next(ctx, last, 5); err != nil || split.Hi != strconv.FormatUint(more[2], 10) || !split.Last {
		t.Errorf("Next after 2 new orders = %+v, %v; want hi %d, last", split, err, more[2])
	}

	t.Run("raw", func(t *testing.T) {
		raw := connectortest.Build(t, res, &natsconn.Source{Stream: stream, Decode: natsconn.DecodeRaw})
		recs, err := raw.Read(ctx, "", strconv.FormatUint(seqs[0], 10))
		if err != nil || len(recs) != 1 || recs[0]["data"] != `{"n": 0, "name": "o0"}` {
			t.Errorf("raw Read = %v, %v", recs, err)
		}
	})
	t.Run("bad positions", func(t *testing.T) {
		if _, err := all.Read(ctx, "x", "3"); err == nil {
			t.Error("Read from a position that is not a sequence: no error")
		}
		if _, err := all.Next(ctx, "-1", 3); err == nil {
			t.Error("Next from a negative position: no error")
		}
	})
	// Reading leaves no consumer behind.
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil || si.State.Consumers != 0 {
		t.Errorf("stream has %d consumers after reading (%v), want 0", si.State.Consumers, err)
	}
}

// TestDurable: the durable consumer is acknowledged up to each committed
// batch's end, never back, and its pending count is the backlog.
func TestDurable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stream, js, res := setup(t)
	seqs := publish(t, js, stream, 0, 20)
	src := connectortest.Build(t, res, &natsconn.Source{Stream: stream, Subject: stream + ".orders", Durable: "mirror"})
	durable := func() *jetstream.ConsumerInfo {
		t.Helper()
		c, err := js.Consumer(ctx, stream, "mirror")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	if info := durable(); info.Config.AckPolicy != jetstream.AckAllPolicy || info.NumPending != 10 || info.AckFloor.Stream != 0 {
		t.Fatalf("new durable: ack policy %v, pending %d, ack floor %d; want all, 10, 0", info.Config.AckPolicy, info.NumPending, info.AckFloor.Stream)
	}
	var ranges [][2]string
	for lo := ""; ; {
		split, err := src.Next(ctx, lo, 3)
		if err != nil {
			t.Fatal(err)
		}
		if split.Hi == "" {
			break
		}
		ranges = append(ranges, [2]string{lo, split.Hi})
		lo = split.Hi
	}
	if len(ranges) != 4 {
		t.Fatalf("ranges %v, want 4", ranges)
	}
	if info := durable(); info.AckFloor.Stream != 0 || info.NumAckPending != 0 {
		t.Errorf("planning moved the durable: ack floor %d, %d awaiting ack", info.AckFloor.Stream, info.NumAckPending)
	}
	ack := src.(flows.Acker)
	step := func(r [2]string, wantFloor uint64, wantLeft uint64) {
		t.Helper()
		if err := ack.Ack(ctx, r[0], r[1]); err != nil {
			t.Fatal(err)
		}
		info := durable()
		if info.AckFloor.Stream != wantFloor || info.NumPending+uint64(info.NumAckPending) != wantLeft {
			t.Errorf("after Ack(%s, %s]: ack floor %d, %d left; want %d, %d", r[0], r[1], info.AckFloor.Stream, info.NumPending+uint64(info.NumAckPending), wantFloor, wantLeft)
		}
	}
	step(ranges[0], seqs[4], 7)
	step(ranges[2], seqs[16], 1)
	step(ranges[1], seqs[16], 1) // an earlier batch never moves it back
	step(ranges[3], seqs[18], 0)
	step(ranges[3], seqs[18], 0)
}

func TestSinkDedupes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stream, js, res := setup(t)
	count := func(subject string) uint64 {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subject]
	}
	cfg := &natsconn.Sink{Subject: stream + ".out", Stream: stream}
	s, err := cfg.Build(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if s.Guarantee() != flows.Idempotent || cfg.Guarantee() != flows.Idempotent {
		t.Errorf("guarantee %q, want idempotent", s.Guarantee())
	}
	b := &flows.Batch{Flow: "f", Run: 1, Seq: 1}
	for i := range 1200 {
		b.Records = append(b.Records, flows.Record{"order": i})
	}
	for attempt, want := range []int64{1200, 0} {
		n, err := s.Write(ctx, b)
		if err != nil || n != want {
			t.Errorf("write %d stored %d (%v), want %d", attempt+1, n, err, want)
		}
	}
	if n := count(stream + ".out"); n != 1200 {
		t.Errorf("%d messages after a redelivered batch, want 1200", n)
	}
	// The message id is the header JetStream dedupes on.
	msg, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := msg.GetLastMsgForSubject(ctx, stream+".out")
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Header.Get(jetstream.MsgIDHeader); id != "f/1/1/1199" || string(m.Data) != `{"order":1199}` {
		t.Errorf("last message: id %q, data %s", id, m.Data)
	}

	t.Run("by id field across batches", func(t *testing.T) {
		s, err := (&natsconn.Sink{Subject: stream + ".byid", IDField: "order"}).Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		for seq := range 3 {
			if _, err := s.Write(ctx, &flows.Batch{Flow: "f", Run: 2, Seq: int64(seq), Records: b.Records[:40]}); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(stream + ".byid"); n != 40 {
			t.Errorf("%d messages from three batches of the same 40 ids, want 40", n)
		}
	})
	t.Run("concurrent batches share the connection", func(t *testing.T) {
		s, err := (&natsconn.Sink{Subject: stream + ".many"}).Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 8)
		for seq := range 8 {
			go func() {
				_, err := s.Write(ctx, &flows.Batch{Flow: "f", Run: 3, Seq: int64(seq), Records: b.Records})
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if n := count(stream + ".many"); n != 8*1200 {
			t.Errorf("%d messages from 8 concurrent batches of 1200, want %d", n, 8*1200)
		}
	})
	t.Run("a subject no stream captures", func(t *testing.T) {
		s, err := (&natsconn.Sink{Subject: "nowhere." + stream}).Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(ctx, b); err == nil {
			t.Error("publishing where no stream listens: no error")
		}
	})
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	okSrc, okSink := &natsconn.Source{Stream: "S"}, &natsconn.Sink{Subject: "a.b"}
	for _, tc := range []struct {
		name  string
		src   *natsconn.Source
		sink  *natsconn.Sink
		field string
		want  string
	}{
		{"source without stream", &natsconn.Source{}, nil, "source.stream", "is required"},
		{"stream with a dot", &natsconn.Source{Stream: "a.b"}, nil, "source.stream", "is not a stream name"},
		{"bad filter", &natsconn.Source{Stream: "S", Subject: "a..b"}, nil, "source.subject", "is not a subject filter"},
		{"bad durable", &natsconn.Source{Stream: "S", Durable: "a b"}, nil, "source.durable", "is not a consumer name"},
		{"bad decode", &natsconn.Source{Stream: "S", Decode: "xml"}, nil, "source.decode", `must be "json" or "raw"`},
		{"sink without subject", nil, &natsconn.Sink{}, "sink.subject", "is required"},
		{"wildcard subject", nil, &natsconn.Sink{Subject: "a.*"}, "sink.subject", "no wildcards"},
		{"bad stream", nil, &natsconn.Sink{Subject: "a", Stream: "x*"}, "sink.stream", "is not a stream name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flows.Flow{Name: "bad", Source: okSrc, Sink: okSink}
			var decode func() error
			if tc.src != nil {
				f.Source = tc.src
				settings, _ := json.Marshal(tc.src)
				decode = func() error {
					_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: natsconn.Kind, Settings: settings})
					return err
				}
			} else {
				f.Sink = tc.sink
				settings, _ := json.Marshal(tc.sink)
				decode = func() error {
					_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: natsconn.Kind, Settings: settings})
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
	t.Run("unknown connection", func(t *testing.T) {
		_, err := (&natsconn.Sink{Subject: "a", Connection: "edge"}).Build(context.Background(), engine.NewResources(nil, nil, nil))
		if !errors.Is(err, engine.ErrUnknownConnection) {
			t.Errorf("Build on an unknown connection: %v", err)
		}
	})
}

// TestFlowSubjectToPostgres: a flow from a JetStream subject into a
// PostgreSQL table by upsert, its durable advanced as batches commit, run
// again from its watermark.
func TestFlowSubjectToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stream, js, res := setup(t)
	pgURL := testenv.PostgresURL(t)
	pg, err := sqlstore.OpenDB(ctx, pgURL, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := pg.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := pg.Exec("CREATE TABLE orders (n BIGINT PRIMARY KEY, name TEXT NOT NULL, seq BIGINT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	seqs := publish(t, js, stream, 0, 41)
	job, err := flows.New(flows.Flow{
		Name:   "orders_to_pg",
		Source: &natsconn.Source{Stream: stream, Subject: stream + ".orders", Durable: "pg"},
		Transforms: []flows.Transform{flows.Map("columns", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"n": r["n"], "name": r["name"], "seq": r["_seq"]}, nil
		})},
		Sink: &sqlconn.Sink{Connection: "warehouse", Table: "orders", Mode: sqlconn.Upsert, Key: []string{"n"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := res.URL("nats")
	wres := engine.NewResources(nil, map[string]string{"nats": url, "warehouse": pgURL}, nil)
	t.Cleanup(func() { wres.Close() })
	p, err := job.Open(ctx, engine.Env{Resources: wres}, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		t.Helper()
		if err := pg.Table("orders").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	total, last := runPipeline(t, p, "", 6)
	if total.RowsRead != 21 || count() != 21 || last != strconv.FormatUint(seqs[40], 10) {
		t.Errorf("first run read %d, table has %d rows, ended at %s; want 21, 21, %d", total.RowsRead, count(), last, seqs[40])
	}
	c, err := js.Consumer(ctx, stream, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(ctx); err != nil || info.AckFloor.Stream != seqs[40] || info.NumPending != 0 {
		t.Errorf("durable after the run: %+v, %v; want ack floor %d, nothing pending", info, err, seqs[40])
	}
	publish(t, js, stream, 41, 10)
	total, _ = runPipeline(t, p, last, 6)
	if total.RowsRead != 5 || count() != 26 {
		t.Errorf("second run read %d, table has %d rows; want 5 and 26", total.RowsRead, count())
	}
}

// runPipeline plans p from watermark and processes and acknowledges every
// range as a worker does.
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

// TestOffsetConformance runs the offset sources' suite on a whole stream and
// on a subject filter (with other subjects' messages in between).
func TestOffsetConformance(t *testing.T) {
	t.Parallel()
	for name, filtered := range map[string]bool{"stream": false, "filter": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			connectortest.RunOffset(t, connectortest.Offset{
				Open: func(t *testing.T) (flows.Source, func(*testing.T, int, int) []string) {
					stream, js, res := setup(t)
					cfg := &natsconn.Source{Stream: stream}
					if filtered {
						cfg.Subject = stream + ".wanted"
					}
					src := connectortest.Build(t, res, cfg)
					return src, func(t *testing.T, from, n int) []string {
						var out []string
						for i := from; i < from+n; i++ {
							if filtered {
								if _, err := js.Publish(context.Background(), stream+".noise", []byte(`{"n": -1}`)); err != nil {
									t.Fatal(err)
								}
							}
							ack, err := js.Publish(context.Background(), stream+".wanted", []byte(fmt.Sprintf(`{"n": %d}`, i)))
							if err != nil {
								t.Fatal(err)
							}
							out = append(out, strconv.FormatUint(ack.Sequence, 10))
						}
						return out
					}
				},
				Number:   func(t *testing.T, r flows.Record) int { return int(r["n"].(int64)) },
				Position: func(r flows.Record) string { return fmt.Sprint(r["_seq"]) },
			})
		})
	}
}

func TestIdempotentSinkConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunIdempotentSink(t, connectortest.IdempotentSink{
		Open: func(t *testing.T, idField string) (flows.Sink, func(*testing.T) int) {
			stream, js, res := setup(t)
			s, err := (&natsconn.Sink{Subject: stream + ".out", Stream: stream, IDField: idField}).Build(context.Background(), res)
			if err != nil {
				t.Fatal(err)
			}
			return s, func(t *testing.T) int {
				st, err := js.Stream(context.Background(), stream)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Info(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return int(info.State.Msgs)
			}
		},
	})
}
