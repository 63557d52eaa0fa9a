package flows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

const goodSpec = `{
  "name": "events_copy",
  "description": "copy events",
  "source": {"kind": "mem", "settings": {"n": 10}},
  "transforms": [
    {"type": "rename", "fields": {"id": "event_id"}},
    {"type": "set", "field": "origin", "value": "mem"},
    {"type": "filter", "name": "odd_only", "where": "event_id >= 3 and not event_id == 4"}
  ],
  "sink": {"kind": "mem", "settings": {"mode": "dedupe"}},
  "runtime": "every 30s",
  "options": {"batch_size": 4, "sleep": "250ms"},
  "max_batches_per_run": 3
}`

func TestSpecCompile(t *testing.T) {
	s, err := ParseSpec([]byte(goodSpec))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "events_copy" || f.Runtime != (Heartbeat{Interval: 30 * time.Second}) || f.Options.BatchSize != 4 ||
		f.Options.Sleep != 250*time.Millisecond || f.MaxBatchesPerRun != 3 || len(f.Transforms) != 3 || f.Transforms[2].Name != "odd_only" {
		t.Fatalf("compiled flow %+v", f)
	}
	j, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	p, err := j.Open(context.Background(), engine.Env{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.(engine.BatchProcessor).ProcessBatch(context.Background(), nil, store.Batch{RunID: 1, Seq: 1, Lo: "0", Hi: "6"}); err != nil {
		t.Fatal(err)
	}
	want := []Record{{"event_id": 3, "origin": int64(0)}, {"event_id": 5}, {"event_id": 6}}
	want[0]["origin"], want[1]["origin"], want[2]["origin"] = "mem", "mem", "mem"
	if diff := cmp.Diff(want, p.(*pipeline).sink.(*memSinkLive).rows); diff != "" {
		t.Errorf("records written (-want +got):\n%s", diff)
	}
}

func TestSpecErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		name, spec, field, msg string
	}{
		{"bad name", `{"name": "Events Copy", "source": {"kind": "mem"}, "sink": {"kind": "mem"}}`, "name", "lower-case"},
		{"unknown top field", `{"name": "a", "sorce": {}}`, "sorce", "is not a field"},
		{"unknown source kind", `{"name": "a", "source": {"kind": "kafka"}, "sink": {"kind": "mem"}}`, "source.kind", `unknown source connector "kafka"`},
		{"bad source setting", `{"name": "a", "source": {"kind": "mem", "settings": {"n": -1}}, "sink": {"kind": "mem"}}`, "source.n", "must not be negative"},
		{"bad sink setting", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem", "settings": {"mode": "x"}}}`, "sink.mode", "must be dedupe"},
		{"bad runtime", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "runtime": "every tuesday"}`, "runtime", "at least 1s"},
		{"bad cron", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "runtime": "cron 61 * * * *"}`, "runtime", "cron"},
		{"unknown transform", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "select", "fields": ["a"]}, {"type": "explode"}]}`, "transforms[1].type", `unknown transform "explode"`},
		{"transform setting", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "rename", "feilds": {}}]}`, "transforms[0].feilds", "is not a setting"},
		{"transform missing setting", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "filter"}]}`, "transforms[0].where", "is required"},
		{"bad expression", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "filter", "where": "age => 3"}]}`, "transforms[0].where", "unknown operator"},
		{"bad cast", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "cast", "fields": {"age": "decimal"}}]}`, "transforms[0].fields.age", "type must be"},
		{"bad template", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "set", "field": "x", "template": "{{.a"}]}`, "transforms[0].template", ""},
		{"set both", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "transforms": [{"type": "set", "field": "x", "value": 1, "template": "y"}]}`, "transforms[0].value", "exactly one"},
		{"bad option", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"batch_size": 10000000}}`, "options.batch_size", "must be between"},
		{"bad duration", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"sleep": "soon"}}`, "options.sleep", "duration"},
		{"sql health check", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"health_checks": [{"kind": "lock_waits"}, {"kind": "sql"}]}}`, "options.health_checks[1].kind", "only be declared in a Go definition"},
		{"health check query", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"health_checks": [{"kind": "sql", "query": "SELECT true"}]}}`, "query", "is not a field"},
		{"bad health check", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"health_checks": [{"kind": "replication_lag"}]}}`, "options.health_checks[0].max_seconds", "more than 0"},
		{"unknown health check", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"health_checks": [{"kind": "disk"}]}}`, "options.health_checks[0].kind", "must be one of"},
		{"bad target", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"target_batch_time": "soon"}}`, "options.target_batch_time", "duration"},
		{"target too short", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"target_batch_time": "1ms"}}`, "options.target_batch_time", "between"},
		{"min above the batch size", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"batch_size": 100, "target_batch_time": "1s", "min_batch_size": 200}}`, "options.min_batch_size", "batch_size"},
		{"negative max", `{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "options": {"max_batch_size": -1}}`, "options.max_batch_size", "negative"},
		{"wrong type", `{"name": 5}`, "name", "must be a string"},
		{"trailing", `{"name": "a"} x`, "", "unexpected data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tc.spec))
			if err == nil {
				_, err = s.Compile()
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("spec %s: %v; want field %q saying %q", tc.spec, err, tc.field, tc.msg)
			}
		})
	}
}

// A spec's built-in health checks reach its flow's options.
func TestSpecHealthChecks(t *testing.T) {
	s, err := ParseSpec([]byte(`{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"},
		"options": {"health_checks": [{"kind": "replication_lag", "max_seconds": 2.5, "connection": "replica"}, {"kind": "autovacuum", "table": "public.events"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	want := []store.HealthCheck{
		{Kind: store.HealthReplicationLag, MaxSeconds: 2.5, Connection: "replica"},
		{Kind: store.HealthAutovacuum, Table: "public.events"},
	}
	if diff := cmp.Diff(want, f.Options.HealthChecks); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
}

func TestParseRuntimeRoundTrip(t *testing.T) {
	for _, rt := range []engine.Runtime{Once{}, Heartbeat{Interval: 90 * time.Second}, Cron{Spec: "*/5 * * * *"}, Cron{Spec: "@hourly"}} {
		got, err := ParseRuntime(rt.String())
		if err != nil || got != rt {
			t.Errorf("ParseRuntime(%q) = %v, %v; want %v", rt.String(), got, err, rt)
		}
	}
}

func TestBuiltinTransforms(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	in := []Record{
		{"id": int64(1), "first": "Ada", "last": "Lovelace", "age": "36", "active": true, "email": "a@x", "at": "2026-12-01T10:00:00Z"},
		{"id": int64(2), "first": "Alan", "last": "Turing", "age": "41", "active": false, "email": "b@x", "at": "2026-11-30T10:00:00Z"},
		{"id": int64(3), "first": "Grace", "last": "Hopper", "age": "85", "active": true, "email": "a@x", "at": nil},
	}
	for _, tc := range []struct {
		name string
		spec string
		want []Record
	}{
		{"select", `{"type": "select", "fields": ["id", "nope"]}`, []Record{{"id": int64(1)}, {"id": int64(2)}, {"id": int64(3)}}},
		{"drop and rename", `{"type": "rename", "fields": {"id": "user_id", "first": "id"}}`, nil},
		{"template", `{"type": "set", "field": "name", "template": "{{.first}} {{.last}}"}`, nil},
		{"cast", `{"type": "cast", "fields": {"age": "int", "at": "time", "active": "int"}}`, nil},
		{"filter", `{"type": "filter", "where": "active == true and (age > 40 or email == 'a@x') and at is not null"}`, nil},
		{"dedupe", `{"type": "dedupe", "key": ["email"]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ts TransformSpec
			if err := ts.UnmarshalJSON([]byte(tc.spec)); err != nil {
				t.Fatal(err)
			}
			tr, err := buildTransform(ts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tr.apply(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.name {
			case "select":
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			case "drop and rename":
				if got[0]["user_id"] != int64(1) || got[0]["id"] != "Ada" || len(got[0]) != len(in[0]) {
					t.Errorf("renamed %v", got[0])
				}
			case "template":
				if got[2]["name"] != "Grace Hopper" || in[2]["name"] != nil {
					t.Errorf("templated %v (input changed: %v)", got[2], in[2]["name"])
				}
			case "cast":
				if got[0]["age"] != int64(36) || got[0]["at"] != at || got[0]["active"] != int64(1) || got[2]["at"] != nil {
					t.Errorf("cast %v / %v", got[0], got[2])
				}
			case "filter":
				if len(got) != 1 || got[0]["id"] != int64(1) {
					t.Errorf("filter kept %v, want only id 1", got)
				}
			case "dedupe":
				if len(got) != 2 || got[0]["id"] != int64(1) || got[1]["id"] != int64(2) {
					t.Errorf("dedupe kept %v, want ids 1 and 2", got)
				}
			}
		})
	}
	// A template naming a field the record lacks fails the batch, naming it.
	var ts TransformSpec
	_ = ts.UnmarshalJSON([]byte(`{"type": "set", "field": "x", "template": "{{.missing}}"}`))
	tr, _ := buildTransform(ts)
	if _, err := tr.apply(context.Background(), in); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("template with a missing field: %v", err)
	}
}

func TestExpr(t *testing.T) {
	r := Record{"n": int64(5), "s": "abc", "b": true, "nil": nil, "f": 2.5, "num": "10", "t": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	for src, want := range map[string]bool{
		"n == 5": true, "n != 5": false, "n > 4 and n < 6": true, "n >= 6 or s == 'abc'": true,
		"not n == 5": false, "s == \"abc\"": true, "s < 'abd'": true, "b == true": true, "b == false": false,
		"nil is null": true, "missing is null": true, "n is not null": true, "nil == null": true, "n == null": false,
		"f > 2": true, "num > 9": true, "t > '2026-01-01T00:00:00Z'": true, "(n == 1 or n == 5) and not b == false": true,
		"n == 1 or n == 2 and b == true": false, "n == -5": false,
	} {
		e, err := parseExpr(src)
		if err != nil {
			t.Errorf("parse %q: %v", src, err)
			continue
		}
		if got := e.eval(r); got != want {
			t.Errorf("%q = %v, want %v", src, got, want)
		}
	}
	for _, bad := range []string{"", "n ==", "== 5", "n = 5", "(n == 5", "n == 5)", "n == 'x", "n == abc", "n is 5", "n == 5 and"} {
		if _, err := parseExpr(bad); err == nil {
			t.Errorf("parse %q: no error", bad)
		}
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"n == 5", "a is not null and (b < 'x' or not c >= -1.5e3)", "((", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := parseExpr(src)
		if err == nil {
			e.eval(Record{"a": 1, "n": "x"})
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(goodSpec))
	f.Add([]byte(`{"name": "a", "transforms": [{"type": 1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err == nil {
			s.Compile() //nolint:errcheck // must not panic
		}
	})
}

func TestSpecYAML(t *testing.T) {
	y := `
name: events_copy
source:
  kind: mem
  settings: {n: 10}
transforms:
  - type: rename
    fields: {id: event_id}
  - type: filter
    where: "event_id >= 3"
sink:
  kind: mem
  settings:
    mode: dedupe
runtime: every 30s
options:
  batch_size: 4
`
	s, err := ParseSpecYAML([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	// YAML out, YAML in: the same spec.
	out, err := s.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSpecYAML(out)
	if err != nil {
		t.Fatalf("re-read %s: %v", out, err)
	}
	if diff := cmp.Diff(s, back); diff != "" {
		t.Errorf("round trip through\n%s\n(-want +got):\n%s", out, diff)
	}
	for _, bad := range []string{"name: a\n---\nname: b\n", "- a\n- b\n", "name: [unclosed\n", "name: a\nsorce: {}\n"} {
		if _, err := ParseSpecYAML([]byte(bad)); err == nil {
			t.Errorf("ParseSpecYAML(%q): no error", bad)
		}
	}
}

// A spec's options carry the adaptive batch size: a target as a duration
// and the bounds.
func TestSpecAdaptiveOptions(t *testing.T) {
	s, err := ParseSpec([]byte(`{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"},
		"options": {"batch_size": 500, "target_batch_time": "250ms", "min_batch_size": 50, "max_batch_size": 20000}}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Options; o.TargetBatchTime != 250*time.Millisecond || o.MinBatchSize != 50 || o.MaxBatchSize != 20000 || !o.Adaptive() {
		t.Fatalf("compiled options %+v", o)
	}
}
