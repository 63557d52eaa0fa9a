package amqp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqpgo "github.com/rabbitmq/amqp091-go"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/connectors/amqp"
	"github.com/dripflow/dripflow/pkg/connectors/connectortest"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// setup returns a channel for the test's own use, a queue name unique to
// the test (deleted when it ends) and resources whose "amqp" connection is
// the test broker.
func setup(t *testing.T) (*amqpgo.Channel, string, *engine.Resources) {
	t.Helper()
	url := testenv.AMQPURL(t)
	conn, err := amqpgo.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.Name("dft-")
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(name, false, false, false)
			ch.QueueDelete(name+"-classic", false, false, false)
		}
	})
	res := engine.NewResources(nil, map[string]string{"amqp": url}, nil)
	t.Cleanup(func() { res.Close() })
	return ch, name, res
}

func declareStream(t *testing.T, ch *amqpgo.Channel, name string) {
	t.Helper()
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqpgo.Table{"x-queue-type": "stream"}); err != nil {
		t.Fatalf("declare stream %s (RabbitMQ 3.9 or later?): %v", name, err)
	}
}

// publish publishes n JSON messages {"n": i} to queue through the default
// exchange, with confirms.
func publish(t *testing.T, ch *amqpgo.Channel, queue string, from, n int) {
	t.Helper()
	ctx := context.Background()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqpgo.Publishing{Body: []byte(fmt.Sprintf(`{"n": %d, "name": "o%d"}`, i, i)), MessageId: fmt.Sprintf("m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish %d: confirmed %v, %v", i, ok, err)
		}
	}
}

func want(from, to int) []flows.Record {
	var out []flows.Record
	for i := from; i < to; i++ {
		out = append(out, flows.Record{"n": int64(i), "name": fmt.Sprintf("o%d", i), "_offset": int64(i), "_message_id": fmt.Sprintf("m%d", i)})
	}
	return out
}

func TestStreamSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ch, queue, res := setup(t)
	src := connectortest.Build(t, res, &amqp.Source{Queue: queue, Declare: true})
	if src.Shape() != flows.Offset || !src.Resumes() {
		t.Errorf("shape %q, resumes %v; want an offset source that resumes", src.Shape(), src.Resumes())
	}
	if split, err := src.Next(ctx, "", 10); err != nil || split.Hi != "" {
		t.Errorf("Next on an empty stream = %+v, %v; want nothing", split, err)
	}
	publish(t, ch, queue, 0, 25)
	for _, size := range []int{1, 4, 25, 100} {
		got, ranges := connectortest.ReadAll(t, src, "", size, "")
		if diff := cmp.Diff(want(0, 25), got); diff != "" {
			t.Errorf("size %d (-want +got):\n%s", size, diff)
		}
		if n := (25 + size - 1) / size; len(ranges) != n {
			t.Errorf("size %d: %d ranges, want %d", size, len(ranges), n)
		}
	}
	got, _ := connectortest.ReadAll(t, src, "9", 6, "")
	if diff := cmp.Diff(want(10, 25), got); diff != "" {
		t.Errorf("from offset 9 (-want +got):\n%s", diff)
	}
	if split, err := src.Next(ctx, "24", 10); err != nil || split.Hi != "" {
		t.Errorf("Next at the end = %+v, %v; want nothing", split, err)
	}
	publish(t, ch, queue, 25, 3)
	if split, err := src.Next(ctx, "24", 10); err != nil || split != (flows.Split{Hi: "27", Last: true}) {
		t.Errorf("Next after 3 new messages = %+v, %v; want hi 27, last", split, err)
	}

	t.Run("raw", func(t *testing.T) {
		raw := connectortest.Build(t, res, &amqp.Source{Queue: queue, Decode: amqp.DecodeRaw})
		recs, err := raw.Read(ctx, "", "0")
		if err != nil || len(recs) != 1 || recs[0]["data"] != `{"n": 0, "name": "o0"}` {
			t.Errorf("raw Read = %v, %v", recs, err)
		}
	})
	t.Run("bad positions", func(t *testing.T) {
		if _, err := src.Read(ctx, "x", "3"); err == nil {
			t.Error("Read from a position that is not an offset: no error")
		}
	})
	t.Run("a classic queue is refused and keeps its messages", func(t *testing.T) {
		classic := queue + "-classic"
		if _, err := ch.QueueDeclare(classic, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		publish(t, ch, classic, 0, 3)
		src := connectortest.Build(t, res, &amqp.Source{Queue: classic})
		if _, err := src.Read(ctx, "", "2"); err == nil || !strings.Contains(err.Error(), "is not a stream queue") {
			t.Errorf("Read of a classic queue: %v, want an error saying it is not a stream", err)
		}
		q, err := ch.QueueDeclarePassive(classic, true, false, false, false, nil)
		if err != nil || q.Messages != 3 {
			t.Errorf("classic queue holds %d messages after the refused read (%v), want 3", q.Messages, err)
		}
	})
}

func TestSinkConfirmsAndMessageIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ch, queue, res := setup(t)
	declareStream(t, ch, queue)
	cfg := &amqp.Sink{RoutingKey: queue, IDField: "order"}
	if cfg.Guarantee() != flows.AtLeastOnce {
		t.Errorf("guarantee %q, want at-least-once", cfg.Guarantee())
	}
	s, err := cfg.Build(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	b := &flows.Batch{Flow: "f", Run: 1, Seq: 3}
	for i := range 1500 {
		b.Records = append(b.Records, flows.Record{"order": fmt.Sprintf("o-%d", i), "total": i})
	}
	b.Records[7]["order"] = nil // no id: its place in the batch
	// A redelivered batch publishes again, with the same message ids.
	for range 2 {
		if n, err := s.Write(ctx, b); err != nil || n != 1500 {
			t.Fatalf("Write = %d, %v; want 1500 confirmed", n, err)
		}
	}
	src := connectortest.Build(t, res, &amqp.Source{Queue: queue})
	recs, err := src.Read(ctx, "", "2999")
	if err != nil || len(recs) != 3000 {
		t.Fatalf("read back %d messages (%v), want 3000", len(recs), err)
	}
	for i, r := range recs {
		wantID := fmt.Sprintf("o-%d", i%1500)
		if i%1500 == 7 {
			wantID = "f/1/3/7"
		}
		if r["_message_id"] != wantID || r["total"] != int64(i%1500) {
			t.Fatalf("message %d = %v, want message id %s, total %d", i, r, wantID, i%1500)
		}
	}

	t.Run("unroutable fails the batch", func(t *testing.T) {
		s, err := (&amqp.Sink{RoutingKey: queue + "-nowhere"}).Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(ctx, b); err == nil || !strings.Contains(err.Error(), "unroutable") {
			t.Errorf("Write to a routing key no queue takes: %v, want unroutable", err)
		}
	})
	t.Run("missing exchange fails the batch", func(t *testing.T) {
		s, err := (&amqp.Sink{Exchange: "dft-no-such-exchange", RoutingKey: "x"}).Build(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(ctx, b); err == nil {
			t.Error("Write to a missing exchange: no error")
		}
		// The shared connection survives a channel the broker closed.
		if _, err := (&amqp.Sink{RoutingKey: queue}).Build(ctx, res); err != nil {
			t.Errorf("connection unusable after a closed channel: %v", err)
		}
	})
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	okSrc, okSink := &amqp.Source{Queue: "q"}, &amqp.Sink{RoutingKey: "q"}
	for _, tc := range []struct {
		name  string
		src   *amqp.Source
		sink  *amqp.Sink
		field string
		want  string
	}{
		{"source without queue", &amqp.Source{}, nil, "source.queue", "is required"},
		{"long queue", &amqp.Source{Queue: strings.Repeat("q", 256)}, nil, "source.queue", "longer than 255"},
		{"bad wait", &amqp.Source{Queue: "q", Wait: "soon"}, nil, "source.wait", "duration"},
		{"bad decode", &amqp.Source{Queue: "q", Decode: "xml"}, nil, "source.decode", `must be "json" or "raw"`},
		{"sink without routing key", nil, &amqp.Sink{}, "sink.routing_key", "is required"},
		{"long exchange", nil, &amqp.Sink{Exchange: strings.Repeat("e", 256)}, "sink.exchange", "longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flows.Flow{Name: "bad", Source: okSrc, Sink: okSink}
			var decode func() error
			if tc.src != nil {
				f.Source = tc.src
				settings, _ := json.Marshal(tc.src)
				decode = func() error {
					_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: amqp.Kind, Settings: settings})
					return err
				}
			} else {
				f.Sink = tc.sink
				settings, _ := json.Marshal(tc.sink)
				decode = func() error {
					_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: amqp.Kind, Settings: settings})
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
}

// TestFlowStreamToPostgres: a flow from a RabbitMQ stream into a
// PostgreSQL table by upsert, replayed, then run on from its watermark.
func TestFlowStreamToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ch, queue, res := setup(t)
	declareStream(t, ch, queue)
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
	if err := pg.Exec("CREATE TABLE orders (n BIGINT PRIMARY KEY, name TEXT NOT NULL, stream_offset BIGINT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	publish(t, ch, queue, 0, 33)
	job, err := flows.New(flows.Flow{
		Name:   "rabbit_to_pg",
		Source: &amqp.Source{Queue: queue},
		Transforms: []flows.Transform{flows.Map("columns", func(r flows.Record) (flows.Record, error) {
			return flows.Record{"n": r["n"], "name": r["name"], "stream_offset": r["_offset"]}, nil
		})},
		Sink: &sqlconn.Sink{Connection: "warehouse", Table: "orders", Mode: sqlconn.Upsert, Key: []string{"n"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := res.URL("amqp")
	wres := engine.NewResources(nil, map[string]string{"amqp": url, "warehouse": pgURL}, nil)
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
	total, last := runPipeline(t, p, "", 10)
	if total.RowsRead != 33 || count() != 33 || last != "32" {
		t.Errorf("first run read %d, table has %d rows, ended at %s; want 33, 33, 32", total.RowsRead, count(), last)
	}
	runPipeline(t, p, "", 10)
	if count() != 33 {
		t.Errorf("after a replay the table has %d rows, want 33", count())
	}
	publish(t, ch, queue, 33, 4)
	total, last = runPipeline(t, p, last, 10)
	if total.RowsRead != 4 || count() != 37 || last != strconv.Itoa(36) {
		t.Errorf("second run read %d, table has %d rows, ended at %s; want 4, 37, 36", total.RowsRead, count(), last)
	}
}

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

// TestOffsetConformance runs the offset sources' suite on a stream queue.
func TestOffsetConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunOffset(t, connectortest.Offset{
		Open: func(t *testing.T) (flows.Source, func(*testing.T, int, int) []string) {
			ch, queue, res := setup(t)
			src := connectortest.Build(t, res, &amqp.Source{Queue: queue, Declare: true})
			return src, func(t *testing.T, from, n int) []string {
				publish(t, ch, queue, from, n)
				var out []string
				for i := from; i < from+n; i++ {
					out = append(out, strconv.Itoa(i)) // a fresh stream's offsets count from 0
				}
				return out
			}
		},
		Number:   func(t *testing.T, r flows.Record) int { return int(r["n"].(int64)) },
		Position: func(r flows.Record) string { return fmt.Sprint(r["_offset"]) },
	})
}
