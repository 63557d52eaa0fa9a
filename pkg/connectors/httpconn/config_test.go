package httpconn_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/connectors/httpconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// TestBadSettings: each bad setting is refused by flows.New and by decoding
// the stored settings, with a *FieldError naming it.
func TestBadSettings(t *testing.T) {
	t.Parallel()
	src := &file.Source{Path: "/in", Format: file.JSONL}
	for _, tc := range []struct {
		name  string
		sink  *httpconn.Sink
		field string
		want  string
	}{
		{"no url", &httpconn.Sink{}, "url", "is required"},
		{"relative url", &httpconn.Sink{URL: "/ingest"}, "url", "absolute http or https"},
		{"ftp url", &httpconn.Sink{URL: "ftp://x/y"}, "url", "absolute http or https"},
		{"method", &httpconn.Sink{URL: "http://x", Method: "GET"}, "method", `got "GET"`},
		{"body", &httpconn.Sink{URL: "http://x", Body: "ndjson"}, "body", `must be "object" or "array"`},
		{"key header", &httpconn.Sink{URL: "http://x", IdempotencyHeader: "Idem Key"}, "idempotency_header", "not a header name"},
		{"header name", &httpconn.Sink{URL: "http://x", Headers: map[string]string{"X:Y": "1"}}, "headers", "not a header name"},
		{"env name", &httpconn.Sink{URL: "http://x", Headers: map[string]string{"Authorization": "$env:1TOKEN"}}, "headers", "does not name an environment variable"},
		{"header value", &httpconn.Sink{URL: "http://x", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}, "headers", "control character"},
		{"timeout", &httpconn.Sink{URL: "http://x", Timeout: "10"}, "timeout", "positive duration"},
		{"backoff", &httpconn.Sink{URL: "http://x", Backoff: "-1s"}, "backoff", "positive duration"},
		{"max_backoff", &httpconn.Sink{URL: "http://x", MaxBackoff: "soon"}, "max_backoff", "positive duration"},
		{"max_records", &httpconn.Sink{URL: "http://x", MaxRecords: -2}, "max_records", "must not be negative"},
		{"max_attempts", &httpconn.Sink{URL: "http://x", MaxAttempts: -1}, "max_attempts", "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := flows.New(flows.Flow{Name: "bad", Source: src, Sink: tc.sink})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != "sink."+tc.field || !strings.Contains(fe.Message, tc.want) {
				t.Errorf("flows.New: %v; want field sink.%s saying %q", err, tc.field, tc.want)
			}
			settings, _ := json.Marshal(tc.sink)
			if _, err := flows.DecodeSink(flows.ConnectorConfig{Kind: httpconn.Kind, Settings: settings}); !errors.As(err, &fe) || fe.Field != "sink."+tc.field {
				t.Errorf("DecodeSink(%s): %v; want field sink.%s", settings, err, tc.field)
			}
		})
	}
	t.Run("no source side", func(t *testing.T) {
		_, err := flows.DecodeSource(flows.ConnectorConfig{Kind: httpconn.Kind, Settings: json.RawMessage(`{}`)})
		var fe *flows.FieldError
		if !errors.As(err, &fe) || fe.Field != "source.kind" {
			t.Errorf("DecodeSource of kind http: %v; want a field error for source.kind", err)
		}
	})
	t.Run("malformed settings", func(t *testing.T) {
		for raw, field := range map[string]string{`{"url": 1}`: "sink.url", `{"url": "http://x", "retries": 3}`: "sink.retries", `{"url": "http://x", "headers": ["a"]}`: "sink.headers"} {
			_, err := flows.DecodeSink(flows.ConnectorConfig{Kind: httpconn.Kind, Settings: json.RawMessage(raw)})
			var fe *flows.FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Errorf("DecodeSink(%s): %v; want a field error for %s", raw, err, field)
			}
		}
	})
}

// TestConfigRoundTrip: the stored configuration decodes back into the
// same sink; the flow shows it as idempotent; every setting has help.
func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	sink := &httpconn.Sink{URL: "https://api.example.com/v1/ingest", Method: "PUT", Body: httpconn.BodyArray, IdempotencyHeader: "X-Id",
		Headers: map[string]string{"Authorization": "$env:API_TOKEN"}, Timeout: "5s", MaxRecords: 100, MaxAttempts: 8, Backoff: "1s", MaxBackoff: "1m"}
	job, err := flows.New(flows.Flow{Name: "push", Source: &file.Source{Path: "/in", Format: file.JSONL}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	var cfg flows.Config
	if err := json.Unmarshal(job.Definition().Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Guarantee != flows.Idempotent {
		t.Errorf("guarantee %q", cfg.Guarantee)
	}
	got, err := flows.DecodeSink(cfg.Sink)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(flows.SinkConfig(sink), got); diff != "" {
		t.Errorf("sink (-want +got):\n%s", diff)
	}
	for _, s := range flows.Schema(&httpconn.Sink{}) {
		if s.Help == "" {
			t.Errorf("setting %s has no help", s.Name)
		}
	}
}
