package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	_ "github.com/dripflow/dripflow/pkg/connectors/file"
	_ "github.com/dripflow/dripflow/pkg/connectors/redisstream"
	_ "github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// formValues is what a browser posts for a form: every input by name.
func formValues(f *flowForm) url.Values {
	v := url.Values{"name": {f.Name}, "description": {f.Desc}, "source.kind": {f.SourceKind}, "sink.kind": {f.SinkKind},
		"runtime.mode": {f.Runtime}, "runtime.every": {f.Every}, "runtime.cron": {f.Cron}}
	for k, x := range f.Values {
		if x == "false" {
			continue // an unchecked checkbox sends nothing
		}
		v.Set(k, x)
	}
	for k, x := range f.Options {
		v.Set(k, x)
	}
	if f.Webhooks != "" {
		v.Set("webhooks", f.Webhooks) // a hidden input
	}
	if f.HealthChecks != "" {
		v.Set("health_checks", f.HealthChecks) // a hidden input
	}
	for i, t := range f.Transforms {
		p := "transforms." + string(rune('0'+i)) + "."
		v.Set(p+"type", t.Type)
		v.Set(p+"name", t.Name)
		v.Set(p+"settings", t.Settings)
	}
	return v
}

// TestFlowFormRoundTrip: a spec loaded into the form and posted back
// unchanged is the same spec, for every kind of setting.
func TestFlowFormRoundTrip(t *testing.T) {
	for _, doc := range []string{
		`{"name": "a", "source": {"kind": "sql", "settings": {"table": "t", "columns": ["id", "note"], "where": "id > ? and x = ?", "args": [5, "y"], "cursor": ["updated_at", "id"]}},
		  "transforms": [{"type": "rename", "name": "ren", "fields": {"id": "user_id"}}, {"type": "filter", "where": "user_id > 1"}],
		  "sink": {"kind": "file", "settings": {"dir": "/tmp/o", "format": "csv", "max_records": 10, "columns": ["user_id"], "comma": ";"}},
		  "runtime": "cron */5 * * * *", "options": {"batch_size": 20, "sleep": "250ms"}, "max_batches_per_run": 7}`,
		`{"name": "b", "description": "d", "source": {"kind": "file", "settings": {"path": "/in/*.csv", "format": "csv", "types": {"age": "int"}, "no_metadata": true}},
		  "sink": {"kind": "sql", "settings": {"table": "x"}}, "runtime": "every 30s"}`,
		`{"name": "c", "source": {"kind": "redisstream", "settings": {"stream": "s", "group": "g"}}, "sink": {"kind": "file", "settings": {"dir": "/o", "format": "jsonl"}}}`,
		`{"name": "d", "source": {"kind": "sql", "settings": {"table": "t"}}, "sink": {"kind": "file", "settings": {"dir": "/o", "format": "jsonl"}},
		  "webhooks": [{"url": "https://hooks.example.com/x?a=1&b=<2>"}, {"url": "https://chat.example.com/h", "format": "slack", "events": ["failed"]}]}`,
		`{"name": "e", "source": {"kind": "sql", "settings": {"table": "t"}}, "sink": {"kind": "file", "settings": {"dir": "/o", "format": "jsonl"}},
		  "options": {"batch_size": 5, "health_checks": [{"kind": "replication_lag", "max_seconds": 2.5, "connection": "replica"}, {"kind": "lock_waits", "max": 1}]}}`,
	} {
		want, err := flows.ParseSpec([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		f := formOfSpec(want, 3)
		if len(f.Errors) > 0 {
			t.Fatalf("%s: loading the spec: %v", want.Name, f.Errors)
		}
		r := &http.Request{PostForm: formValues(f)}
		got := readFlowForm(r).spec()
		if want.Runtime == "" {
			want.Runtime = "once"
		}
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		var wm, gm any
		json.Unmarshal(wj, &wm)
		json.Unmarshal(gj, &gm)
		if d := cmp.Diff(wm, gm); d != "" {
			t.Errorf("%s: spec after the form (-want +got):\n%s", want.Name, d)
		}
	}
}

// TestFlowFormLoadReportsUnknownSettings: a pasted setting the connector
// does not have is reported, not dropped silently.
func TestFlowFormLoadReportsUnknownSettings(t *testing.T) {
	sp, err := flows.ParseSpec([]byte(`{"name": "a", "source": {"kind": "sql", "settings": {"table": "t", "tabel": "u"}}, "sink": {"kind": "file", "settings": {"dir": "/o", "format": "jsonl"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := formOfSpec(sp, 0)
	if msg := f.Errors["source.tabel"]; !strings.Contains(msg, "is not a setting") {
		t.Fatalf("errors: %v", f.Errors)
	}
}

func TestPreviewLeavesOutSideEffects(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ignored  []string
	}{
		{`{"stream": "s", "group": "g", "consumer": "c"}`, `{"stream":"s"}`, []string{"group", "consumer"}},
		{`{"stream": "s"}`, `{"stream": "s"}`, nil},
		{`{"queue": "q", "declare": false}`, `{"queue":"q"}`, nil},
		{`{"stream": "s", "durable": "d"}`, `{"stream":"s"}`, []string{"durable"}},
	} {
		got, ignored := withoutSettings(json.RawMessage(tc.in), previewIgnored)
		if tc.ignored == nil && string(got) != tc.in && string(got) != tc.want {
			t.Errorf("%s: %s", tc.in, got)
		}
		if tc.ignored != nil && string(got) != tc.want {
			t.Errorf("%s: settings %s, want %s", tc.in, got, tc.want)
		}
		if d := cmp.Diff(tc.ignored, ignored); d != "" {
			t.Errorf("%s: ignored (-want +got):\n%s", tc.in, d)
		}
	}
}
