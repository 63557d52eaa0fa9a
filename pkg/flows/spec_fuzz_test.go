package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

var specSeeds = []string{
	goodSpec,
	`{"name": "a", "transforms": [{"type": 1}]}`,
	`{"name": "a", "source": {"kind": "mem"}, "sink": {"kind": "mem"}, "runtime": "cron */5 * * * *"}`,
	`{"name": "a", "runtime": "every -1s", "options": {"batch_size": -3, "sleep": "forever"}}`,
	`{"name": "a", "source": {"kind": "nope", "settings": {"x": [1, {"y": null}]}}}`,
	`{"name": "a", "transforms": [{"type": "filter", "where": "(("}]}`,
	`{"name": "a"} {"name": "b"}`, `{"nam": "a"}`, `[]`, `null`, `"x"`, ``, `{`,
	"{\"name\": \"\xff\"}", `{"name": "a\u0000"}`,
}

// specErr checks that a spec error is the documented *FieldError.
func specErr(t *testing.T, what string, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: error %T (%v), want a *FieldError", what, err, err)
	}
}

// sameSpec fails unless two specs say the same: equal as JSON (absent
// settings and "settings": null are the same).
func assertSameSpec(t *testing.T, how string, want, got Spec) {
	t.Helper()
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("%s round trip changed the spec:\n%s\n%s", how, a, b)
	}
}

// FuzzSpecRoundTrip: a JSON spec ParseSpec accepts is written back as JSON
// and as YAML, and each reads back to the same spec; a refused one is a
// *FieldError; Compile never panics.
func FuzzSpecRoundTrip(f *testing.F) {
	for _, s := range specSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			specErr(t, "ParseSpec", err)
			return
		}
		s.Compile() //nolint:errcheck // must not panic
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal an accepted spec: %v", err)
		}
		back, err := ParseSpec(js)
		if err != nil {
			t.Fatalf("ParseSpec refuses its own %s: %v", js, err)
		}
		assertSameSpec(t, "JSON", s, back)
		y, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML of an accepted spec: %v", err)
		}
		fromYAML, err := ParseSpecYAML(y)
		if err != nil {
			t.Fatalf("ParseSpecYAML refuses its own\n%s: %v", y, err)
		}
		assertSameSpec(t, "YAML", s, fromYAML)
	})
}

// FuzzParseSpecYAML: any file ParseSpecYAML is given, it does not panic,
// refuses with a *FieldError, and what it accepts compiles without panic
// and reads back the same from its own YAML.
func FuzzParseSpecYAML(f *testing.F) {
	for _, s := range specSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"name: a\nsource: {kind: mem}\nsink: {kind: mem}\nruntime: every 30s\n",
		"name: a\n---\nname: b\n", "- a\n- b\n", "name: &x a\nother: *x\n", "name: [unclosed\n", "\t: :\n",
		"name: a\noptions:\n  batch_size: 1e400\n", "name: a\nsource:\n  settings: {? [1, 2] : x}\n", "~\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpecYAML(data)
		if err != nil {
			specErr(t, "ParseSpecYAML", err)
			return
		}
		s.Compile() //nolint:errcheck // must not panic
		y, err := s.YAML()
		if err != nil {
			t.Fatalf("YAML of an accepted spec: %v", err)
		}
		back, err := ParseSpecYAML(y)
		if err != nil {
			t.Fatalf("ParseSpecYAML refuses its own\n%s: %v", y, err)
		}
		assertSameSpec(t, "YAML", s, back)
	})
}
