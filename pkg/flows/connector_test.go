package flows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// TestNewNamesTheFailingField: connector configuration is checked when the
// flow is registered, and the error names the field.
func TestNewNamesTheFailingField(t *testing.T) {
	_, err := New(Flow{Name: "f", Source: &memSource{N: -1}, Sink: &memSink{}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "source.n" || !strings.Contains(err.Error(), `flow "f": source.n: must not be negative`) {
		t.Errorf("New with a bad source: %v, want a field error for source.n", err)
	}
	_, err = New(Flow{Name: "f", Source: &memSource{}, Sink: &memSink{Mode: "twice"}})
	if !errors.As(err, &fe) || fe.Field != "sink.mode" {
		t.Errorf("New with a bad sink: %v, want a field error for sink.mode", err)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		c         ConnectorConfig
		sink      bool
		wantField string
		wantMsg   string
	}{
		{"unknown source kind", ConnectorConfig{Kind: "kafka"}, false, "source.kind", `unknown source connector "kafka" (known: mem`},
		{"unknown sink kind", ConnectorConfig{Kind: "kafka"}, true, "sink.kind", `unknown sink connector "kafka"`},
		{"misspelt setting", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"m": 3}`)}, false, "source.m", "is not a setting of this connector (settings: n, fail)"},
		{"wrong type", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"n": "three"}`)}, false, "source.n", "must be an integer"},
		{"invalid value", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"n": -4}`)}, false, "source.n", "must not be negative"},
		{"sink value", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"mode": "x"}`)}, true, "sink.mode", "must be dedupe"},
		{"not an object", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`[1]`)}, false, "source", "settings"},
		{"trailing data", ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"n": 1} {}`)}, false, "source", "unexpected data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.sink {
				_, err = DecodeSink(tc.c)
			} else {
				_, err = DecodeSource(tc.c)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField || !strings.Contains(fe.Message, tc.wantMsg) {
				t.Errorf("decode %s: %v, want field %q with %q", tc.c.Settings, err, tc.wantField, tc.wantMsg)
			}
		})
	}
	src, err := DecodeSource(ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"n": 7}`)})
	if err != nil || src.(*memSource).N != 7 {
		t.Errorf("DecodeSource = %#v, %v; want n 7", src, err)
	}
	if _, err := DecodeSink(ConnectorConfig{Kind: "mem"}); err != nil {
		t.Errorf("DecodeSink without settings: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	j, err := New(Flow{Name: "d", Source: &memSource{N: 5}, Sink: &memSink{Mode: "dedupe"}, Runtime: Heartbeat{Interval: 60e9},
		Transforms: []Transform{Map("m", func(r Record) (Record, error) { return r, nil })}})
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := json.Unmarshal(j.Definition().Config, &got); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Source:     ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"n":5}`)},
		Sink:       ConnectorConfig{Kind: "mem", Settings: json.RawMessage(`{"mode":"dedupe"}`)},
		Transforms: []string{"m"}, Runtime: "every 1m0s", Guarantee: Idempotent, MaxBatchesPerRun: MaxBatchesPerRunDefault,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored config (-want +got):\n%s", diff)
	}
	// The stored settings rebuild the same configuration.
	src, err := DecodeSource(got.Source)
	if err != nil || src.(*memSource).N != 5 {
		t.Errorf("rebuilt source %#v, %v", src, err)
	}
}

// TestPipeline runs a flow with an offset source the way the scheduler and
// the worker do: plan to the run's limit, process each batch, acknowledge.
func TestPipeline(t *testing.T) {
	ctx := context.Background()
	j, err := New(Flow{
		Name: "p", Source: &memSource{N: 10}, Sink: &memSink{Mode: "dedupe"}, MaxBatchesPerRun: 2,
		Transforms: []Transform{Filter("odd", func(r Record) bool { return r["id"].(int)%2 == 1 })},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := engine.NewResources(nil, nil, nil)
	defer res.Close()
	p, err := j.Open(ctx, engine.Env{Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := j.Open(ctx, engine.Env{Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.(*pipeline).src != p2.(*pipeline).src {
		t.Error("two runs in one process built the source twice; connectors are built once per process")
	}
	if !p.Incremental() || p.Start("4") != "4" || p.WritesTo() != nil {
		t.Errorf("offset pipeline: incremental %v, start %q, writes to %v", p.Incremental(), p.Start("4"), p.WritesTo())
	}
	if lim := p.(engine.PlanLimiter).MaxBatches(); lim != 2 {
		t.Errorf("MaxBatches = %d, want 2", lim)
	}
	if _, _, err := p.Count(ctx); !errors.Is(err, engine.ErrCannotCount) {
		t.Errorf("Count of a source without Counter: %v, want ErrCannotCount", err)
	}
	hi, more, ok, err := p.Next(ctx, "4", 4)
	if err != nil || hi != "8" || !more || !ok {
		t.Fatalf("Next(4, 4) = %q %v %v %v, want 8, more", hi, more, ok, err)
	}
	b := store.Batch{RunID: 3, Seq: 2, Lo: "4", Hi: "8"}
	for range 2 { // a redelivery writes nothing twice
		r, err := p.(engine.BatchProcessor).ProcessBatch(ctx, nil, b)
		if err != nil {
			t.Fatal(err)
		}
		if r.RowsRead != 4 || r.RowsSkipped != 2 {
			t.Errorf("result %+v, want 4 read, 2 skipped", r)
		}
	}
	sink := p.(*pipeline).sink.(*memSinkLive)
	if diff := cmp.Diff([]Record{{"id": 5}, {"id": 7}}, sink.rows); diff != "" {
		t.Errorf("rows written (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"p/3/2", "p/3/2"}, sink.batches); diff != "" {
		t.Errorf("batch ids (-want +got):\n%s", diff)
	}
	if err := p.(engine.Acker).Ack(ctx, "4", "8"); err != nil {
		t.Fatal(err)
	}
	if got := p.(*pipeline).src.(*memSourceLive).acked; !cmp.Equal(got, [][2]string{{"4", "8"}}) {
		t.Errorf("acked %v", got)
	}
	if _, _, ok, _ := p.Next(ctx, "10", 4); ok {
		t.Error("Next at the end: ok")
	}
}

func TestOpenRetriesAFailedBuild(t *testing.T) {
	src := &memSource{N: 1, Fail: "build"}
	j, err := New(Flow{Name: "b", Source: src, Sink: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	res := engine.NewResources(nil, nil, nil)
	if _, err := j.Open(context.Background(), engine.Env{Resources: res}, nil); err == nil || !strings.Contains(err.Error(), `flow "b": build mem source: cannot connect`) {
		t.Fatalf("Open with a failing build: %v", err)
	}
	src.Fail = ""
	if _, err := j.Open(context.Background(), engine.Env{Resources: res}, nil); err != nil {
		t.Errorf("Open after the connection came back: %v", err)
	}
}

func TestResources(t *testing.T) {
	res := engine.NewResources(nil, map[string]string{"replica": "mysql://x"}, nil)
	if u, err := res.URL("replica"); err != nil || u != "mysql://x" {
		t.Errorf("URL(replica) = %q, %v", u, err)
	}
	if _, err := res.URL("nope"); !errors.Is(err, engine.ErrUnknownConnection) || !strings.Contains(err.Error(), "replica") {
		t.Errorf("URL(nope): %v, want ErrUnknownConnection listing the known ones", err)
	}
	opened, closed := 0, 0
	open := func() (any, func() error, error) {
		opened++
		return opened, func() error { closed++; return nil }, nil
	}
	a, _ := res.Shared("k", open)
	b, _ := res.Shared("k", open)
	if a != b || opened != 1 {
		t.Errorf("Shared opened %d times, want once", opened)
	}
	if _, err := res.Shared("bad", func() (any, func() error, error) { return nil, nil, errors.New("down") }); err == nil {
		t.Error("a failed open is no error")
	}
	if v, err := res.Shared("bad", func() (any, func() error, error) { return 2, nil, nil }); err != nil || v != 2 {
		t.Errorf("a failed open was cached: %v, %v", v, err)
	}
	if err := res.Close(); err != nil || closed != 1 {
		t.Errorf("Close: %v, closed %d handles, want 1", err, closed)
	}
}

func TestSchema(t *testing.T) {
	type cfg struct {
		Name string            `json:"name" help:"the name"`
		N    int               `json:"n,omitempty"`
		On   bool              `json:"on,omitempty"`
		F    float64           `json:"f,omitempty"`
		List []string          `json:"list,omitempty"`
		Map  map[string]string `json:"map,omitempty"`
		Skip string            `json:"-"`
	}
	want := []SettingSchema{
		{Name: "name", Type: "string", Required: true, Help: "the name"},
		{Name: "n", Type: "integer"}, {Name: "on", Type: "boolean"}, {Name: "f", Type: "number"},
		{Name: "list", Type: "list"}, {Name: "map", Type: "object"},
	}
	if diff := cmp.Diff(want, Schema(&cfg{})); diff != "" {
		t.Errorf("Schema (-want +got):\n%s", diff)
	}
}
