package flows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// A stored spec version compiles into the same kind of job as a Go flow,
// marked as a spec of that version, and runs like one.
func TestCompileStored(t *testing.T) {
	j, err := CompileStored(store.FlowSpec{Name: "events_copy", Version: 4, Spec: []byte(goodSpec)})
	if err != nil {
		t.Fatal(err)
	}
	d := j.Definition()
	if d.Origin != store.OriginSpec || d.Version != 4 || d.Kind != store.KindFlow || d.Description != "copy events" {
		t.Errorf("definition %+v, want a flow of origin spec, version 4", d)
	}
	if rt := j.(engine.Triggered).Runtime().String(); rt != "every 30s" {
		t.Errorf("runtime %q", rt)
	}
	res := engine.NewResources(nil, nil, nil)
	defer res.Close()
	p1, err := j.Open(context.Background(), engine.Env{Resources: res}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := j.Open(context.Background(), engine.Env{Resources: res}, nil)
	if p1.(*pipeline).sink != p2.(*pipeline).sink {
		t.Errorf("two runs of one version built two sinks; connectors are built once per process")
	}
	code, err := New(Flow{Name: "code_flow", Source: &memSource{N: 1}, Sink: &memSink{}})
	if err != nil {
		t.Fatal(err)
	}
	if o := code.Definition().Origin; o != store.OriginCode {
		t.Errorf("a Go flow's origin is %q, want code", o)
	}

	for _, tc := range []struct {
		name, spec, want string
	}{
		{"other_name", goodSpec, `flow "other_name" version 1: the spec is named "events_copy"`},
		{"events_copy", strings.Replace(goodSpec, `"mode": "dedupe"`, `"mode": "twice"`, 1), `flow "events_copy" version 1: sink.mode: must be dedupe`},
		{"events_copy", `{"name": "events_copy", "sorce": {}}`, "sorce"},
	} {
		_, err := CompileStored(store.FlowSpec{Name: tc.name, Version: 1, Spec: []byte(tc.spec)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileStored(%s): %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestReadSpecFileAndSameSpec(t *testing.T) {
	yml := "name: events_copy\nsource: {kind: mem, settings: {n: 10}}\nsink: {kind: mem}\n"
	js := `{"sink": {"settings": {}, "kind": "mem"}, "name": "events_copy", "runtime": "", "source": {"kind": "mem", "settings": {"n": 10}}}`
	a, err := ReadSpecFile("x.YML", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadSpecFile("flow.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	ra, err := a.Record()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Record()
	if err != nil {
		t.Fatal(err)
	}
	if !sameSpec(ra.Spec, []byte(js)) {
		t.Errorf("the YAML and the JSON spec say the same but compare different:\n%s\n%s", ra.Spec, rb.Spec)
	}
	if ra.Name != "events_copy" || len(ra.Defaults) == 0 {
		t.Errorf("record %+v", ra)
	}
	c, _ := ReadSpecFile("c.json", []byte(strings.Replace(js, `"n": 10`, `"n": 11`, 1)))
	rc, _ := c.Record()
	if sameSpec(ra.Spec, rc.Spec) {
		t.Errorf("different settings compare the same")
	}
	if _, err := ReadSpecFile("flow.txt", []byte(js)); err == nil || !strings.Contains(err.Error(), ".yaml, .yml or .json") {
		t.Errorf("a .txt file: %v", err)
	}
	if _, err := ReadSpecFile("bad.yaml", []byte("name: [")); err == nil {
		t.Errorf("broken YAML read without error")
	}
	var fe *FieldError
	if _, err := (Spec{Name: "x", Source: ConnectorConfig{Kind: "nope"}}).Record(); !errors.As(err, &fe) || fe.Field != "source.kind" {
		t.Errorf("an invalid spec's record: %v, want a field error on source.kind", err)
	}
}
