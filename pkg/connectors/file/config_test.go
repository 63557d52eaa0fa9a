package file_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/flows"
)

// TestBadSettings: each bad setting is refused by flows.New and by decoding
// the stored settings, with a *FieldError naming it.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	goodSrc := &file.Source{Path: "/in", Format: file.JSONL}
	goodSink := &file.Sink{Dir: "/out", Format: file.JSONL}
	for _, tc := range []struct {
		name  string
		src   *file.Source
		field string
		want  string
	}{
		{"no path", &file.Source{Format: file.JSONL}, "path", "is required"},
		{"bad glob", &file.Source{Path: "/in/[a", Format: file.JSONL}, "path", "not a valid glob"},
		{"no format", &file.Source{Path: "/in"}, "format", `must be "jsonl" or "csv", got ""`},
		{"unknown format", &file.Source{Path: "/in", Format: "xml"}, "format", `got "xml"`},
		{"comma for jsonl", &file.Source{Path: "/in", Format: file.JSONL, Comma: ";"}, "comma", "csv format only"},
		{"types for jsonl", &file.Source{Path: "/in", Format: file.JSONL, Types: map[string]string{"a": "int"}}, "types", "csv format only"},
		{"long comma", &file.Source{Path: "/in", Format: file.CSV, Comma: ";;"}, "comma", "one character"},
		{"quote comma", &file.Source{Path: "/in", Format: file.CSV, Comma: `"`}, "comma", "one character"},
		{"unknown type", &file.Source{Path: "/in", Format: file.CSV, Types: map[string]string{"a": "int", "b": "decimal"}}, "types", `column b: type "decimal" is not one of string, int, float, bool, time`},
	} {
		t.Run("source/"+tc.name, func(t *testing.T) {
			_, err := flows.New(flows.Flow{Name: "bad", Source: tc.src, Sink: goodSink})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != "source."+tc.field || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v; want field source.%s saying %q", err, tc.field, tc.want)
			}
			settings, _ := json.Marshal(tc.src)
			if _, err := flows.DecodeSource(flows.ConnectorConfig{Kind: file.Kind, Settings: settings}); !errors.As(err, &fe) || fe.Field != "source."+tc.field {
				t.Errorf("DecodeSource(%s): %v; want field source.%s", settings, err, tc.field)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		sink  *file.Sink
		field string
		want  string
	}{
		{"no dir", &file.Sink{Format: file.JSONL}, "dir", "is required"},
		{"no format", &file.Sink{Dir: "/out"}, "format", `got ""`},
		{"prefix with a slash", &file.Sink{Dir: "/out", Format: file.JSONL, Prefix: "a/b"}, "prefix", "plain file name"},
		{"hidden prefix", &file.Sink{Dir: "/out", Format: file.JSONL, Prefix: ".x"}, "prefix", "plain file name"},
		{"negative max_records", &file.Sink{Dir: "/out", Format: file.JSONL, MaxRecords: -1}, "max_records", "must not be negative"},
		{"negative max_bytes", &file.Sink{Dir: "/out", Format: file.JSONL, MaxBytes: -1}, "max_bytes", "must not be negative"},
		{"columns for jsonl", &file.Sink{Dir: "/out", Format: file.JSONL, Columns: []string{"a"}}, "columns", "csv format only"},
		{"duplicate column", &file.Sink{Dir: "/out", Format: file.CSV, Columns: []string{"a", "a"}}, "columns", "distinct"},
		{"newline comma", &file.Sink{Dir: "/out", Format: file.CSV, Comma: "\n"}, "comma", "one character"},
	} {
		t.Run("sink/"+tc.name, func(t *testing.T) {
			_, err := flows.New(flows.Flow{Name: "bad", Source: goodSrc, Sink: tc.sink})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != "sink."+tc.field || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v; want field sink.%s saying %q", err, tc.field, tc.want)
			}
			settings, _ := json.Marshal(tc.sink)
			if _, err := flows.DecodeSink(flows.ConnectorConfig{Kind: file.Kind, Settings: settings}); !errors.As(err, &fe) || fe.Field != "sink."+tc.field {
				t.Errorf("DecodeSink(%s): %v; want field sink.%s", settings, err, tc.field)
			}
		})
	}
	t.Run("malformed settings", func(t *testing.T) {
		for raw, field := range map[string]string{`{"path": 1}`: "source.path", `{"pth": "/in"}`: "source.pth", `{"path": "/in", "format": "jsonl", "types": []}`: "source.types"} {
			_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: file.Kind, Settings: json.RawMessage(raw)})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("DecodeSource(%s): %v; want a field error for %s", raw, err, field)
			}
		}
		_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: file.Kind, Settings: json.RawMessage(`{"dir": "/out", "format": "csv", "max_bytes": "1MB"}`)})
		var fe *flows.FieldError
		if !errors.As(err, &fe) || fe.Field != "sink.max_bytes" {
			t.Errorf("DecodeSink with max_bytes as a string: %v", err)
		}
	})
}

// TestConfigRoundTrip: a flow's stored configuration decodes back into the
// same connector configurations, and the sink is shown as idempotent.
func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	src := &file.Source{Path: "/in/*.csv", Format: file.CSV, Comma: ";", Types: map[string]string{"id": "int"}, NoMetadata: true}
	sink := &file.Sink{Dir: "/out", Format: file.JSONL, Prefix: "x", MaxRecords: 10, MaxBytes: 1 << 20}
	job, err := flows.New(flows.Flow{Name: "files_roundtrip", Source: src, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	var cfg flows.Config
	if err := json.Unmarshal(job.Definition().Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Guarantee != flows.Idempotent || cfg.Transactional {
		t.Errorf("guarantee %q, transactional %v; want idempotent only", cfg.Guarantee, cfg.Transactional)
	}
	gotSrc, err := flows.DecodeSource(cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	gotSink, err := flows.DecodeSink(cfg.Sink)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(flows.SourceConfig(src), gotSrc); diff != "" {
		t.Errorf("source (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(flows.SinkConfig(sink), gotSink); diff != "" {
		t.Errorf("sink (-want +got):\n%s", diff)
	}
	for _, s := range flows.Schema(&file.Source{}) {
		if s.Help == "" {
			t.Errorf("source setting %s has no help", s.Name)
		}
	}
	for _, s := range flows.Schema(&file.Sink{}) {
		if s.Help == "" {
			t.Errorf("sink setting %s has no help", s.Name)
		}
	}
}
