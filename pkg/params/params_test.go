package params_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/params"
)

type Role string

// Full has every supported field type and tag.
type Full struct {
	Role    Role          `json:"role" default:"member" enum:"member, admin ,guest" help:"role to set"`
	Name    string        `json:"name" required:"true" help:"who"`
	Limit   int           `json:"limit" default:"100"`
	Small   int8          `json:"small"`
	Count   uint32        `json:"count"`
	Big     int64         `json:"big"`
	Ratio   float64       `json:"ratio" default:"0.5"`
	Half    float32       `json:"half"`
	DryRun  bool          `json:"dry_run" default:"true"`
	Force   bool          `json:"force"`
	Since   time.Time     `json:"since"`
	Until   time.Time     `json:"until" default:"2027-01-01T00:00:00+01:00"`
	Wait    time.Duration `json:"wait" default:"1m30s"`
	Timeout time.Duration `json:"timeout"`
	GoName  string
	Omit    string `json:",omitempty"`
	Skipped string `json:"-"`
	private string // unexported fields are not params
}

var _ = Full{}.private

func newSpec[P any](t testing.TB) *params.Spec[P] {
	t.Helper()
	s, err := params.NewSpec[P]()
	if err != nil {
		t.Fatalf("NewSpec[%T]: %v", *new(P), err)
	}
	return s
}

func TestSchema(t *testing.T) {
	s := newSpec[Full](t)
	want := []params.Field{
		{Name: "role", Type: params.TypeString, Default: "member", Enum: []string{"member", "admin", "guest"}, Description: "role to set"},
		{Name: "name", Type: params.TypeString, Required: true, Description: "who"},
		{Name: "limit", Type: params.TypeInteger, Default: 100},
		{Name: "small", Type: params.TypeInteger},
		{Name: "count", Type: params.TypeInteger},
		{Name: "big", Type: params.TypeInteger},
		{Name: "ratio", Type: params.TypeNumber, Default: 0.5},
		{Name: "half", Type: params.TypeNumber},
		{Name: "dry_run", Type: params.TypeBoolean, Default: true},
		{Name: "force", Type: params.TypeBoolean},
		{Name: "since", Type: params.TypeTime},
		{Name: "until", Type: params.TypeTime, Default: "2026-12-31T23:00:00Z"},
		{Name: "wait", Type: params.TypeDuration, Default: "1m30s"},
		{Name: "timeout", Type: params.TypeDuration},
		{Name: "GoName", Type: params.TypeString},
		{Name: "Omit", Type: params.TypeString},
	}
	// The schema is what the API and the UI see: compare its JSON.
	got, err := json.Marshal(s.Schema())
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(params.Schema{Fields: want})
	var g, w any
	json.Unmarshal(got, &g)
	json.Unmarshal(wantJSON, &w)
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("schema JSON (-want +got):\n%s", diff)
	}

	empty, err := json.Marshal(newSpec[struct{}](t).Schema())
	if err != nil || string(empty) != `{"fields":[]}` && string(empty) != `{"fields":null}` {
		t.Errorf("schema of struct{} = %s, %v", empty, err)
	}
}

func TestSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func() error
		want string
	}{
		{"not a struct", func() error { _, err := params.NewSpec[string](); return err }, "must be a struct"},
		{"map", func() error { _, err := params.NewSpec[map[string]any](); return err }, "must be a struct"},
		{"slice field", func() error {
			_, err := params.NewSpec[struct {
				IDs []int `json:"ids"`
			}]()
			return err
		}, "field IDs has unsupported type []int"},
		{"pointer field", func() error {
			_, err := params.NewSpec[struct{ N *int }]()
			return err
		}, "field N has unsupported type *int"},
		{"enum on an integer", func() error {
			_, err := params.NewSpec[struct {
				N int `enum:"1,2"`
			}]()
			return err
		}, "enum on non-string field N"},
		{"default outside the enum", func() error {
			_, err := params.NewSpec[struct {
				R string `default:"root" enum:"a,b"`
			}]()
			return err
		}, `default "root" of R is not one of [a b]`},
		{"bad integer default", func() error {
			_, err := params.NewSpec[struct {
				N int8 `default:"300"`
			}]()
			return err
		}, "default of N"},
		{"bad duration default", func() error {
			_, err := params.NewSpec[struct {
				D time.Duration `default:"soon"`
			}]()
			return err
		}, "default of D"},
		{"bad time default", func() error {
			_, err := params.NewSpec[struct {
				T time.Time `default:"2026-01-01"`
			}]()
			return err
		}, "default of T"},
		{"bad bool default", func() error {
			_, err := params.NewSpec[struct {
				B bool `default:"yes"`
			}]()
			return err
		}, "default of B"},
		{"two fields with one name", func() error {
			_, err := params.NewSpec[struct {
				A string `json:"X"`
				X int
			}]()
			return err
		}, `"X"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.new()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewSpec: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	s := newSpec[Full](t)
	defaults := Full{Role: "member", Limit: 100, Ratio: 0.5, DryRun: true,
		Until: time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), Wait: 90 * time.Second}
	with := func(f func(*Full)) Full {
		p := defaults
		p.Name = "ann"
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		raw  string
		want Full
	}{
		{"defaults", `{"name":"ann"}`, with(func(*Full) {})},
		{"whitespace", " \n{ \"name\" : \"ann\" }\t", with(func(*Full) {})},
		{"null means default", `{"name":"ann","limit":null,"role":null}`, with(func(*Full) {})},
		{"every field", `{"role":"admin","name":"bob","limit":-5,"small":-128,"count":4294967295,"big":9223372036854775807,
			"ratio":1e-3,"half":0.25,"dry_run":false,"force":true,"since":"2026-02-03T04:05:06.789+02:00",
			"until":"2030-01-01T00:00:00Z","wait":"0s","timeout":"1h2m3.5s","GoName":"g","Omit":"o"}`,
			Full{Role: "admin", Name: "bob", Limit: -5, Small: -128, Count: math.MaxUint32, Big: math.MaxInt64,
				Ratio: 0.001, Half: 0.25, DryRun: false, Force: true,
				Since: time.Date(2026, 2, 3, 2, 5, 6, 789000000, time.UTC), Until: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
				Wait: 0, Timeout: time.Hour + 2*time.Minute + 3500*time.Millisecond, GoName: "g", Omit: "o"}},
		{"numbers as strings (HTML forms)", `{"name":"ann","limit":"42","small":"-3","count":"7","big":"-9","ratio":"2.5","half":"1"}`,
			with(func(p *Full) { p.Limit, p.Small, p.Count, p.Big, p.Ratio, p.Half = 42, -3, 7, -9, 2.5, 1 })},
		{"enum value", `{"name":"ann","role":"guest"}`, with(func(p *Full) { p.Role = "guest" })},
		{"negative duration", `{"name":"ann","timeout":"-1.5s"}`, with(func(p *Full) { p.Timeout = -1500 * time.Millisecond })},
		{"false bool overrides a true default", `{"name":"ann","dry_run":false}`, with(func(p *Full) { p.DryRun = false })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Decode(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tc.raw, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(Full{})); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", tc.raw, diff)
			}
			// The canonical form decodes to the same value.
			enc, err := s.Encode(got)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			back, err := s.Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Encode) = Decode(%s): %v", enc, err)
			}
			if diff := cmp.Diff(got, back, cmp.AllowUnexported(Full{})); diff != "" {
				t.Errorf("round trip through %s (-first +second):\n%s", enc, diff)
			}
		})
	}

	t.Run("no params", func(t *testing.T) {
		ns := newSpec[struct{}](t)
		for _, raw := range []string{"", "  ", "{}", "null"} {
			if _, err := ns.Decode(json.RawMessage(raw)); err != nil {
				t.Errorf("Decode(%q) for no params: %v", raw, err)
			}
		}
		enc, err := ns.Encode(struct{}{})
		if err != nil || string(enc) != "{}" {
			t.Errorf("Encode(struct{}{}) = %s, %v; want {}", enc, err)
		}
	})
}

// TestOptionalEnum: an enum field left empty — absent, null or "" as an
// HTML select sends it — takes its default, and the canonical params of such
// a run decode again.
func TestOptionalEnum(t *testing.T) {
	type P struct {
		Mode  string `json:"mode" enum:"fast,slow"`
		Level string `json:"level" default:"low" enum:"low,high"`
	}
	s := newSpec[P](t)
	for raw, want := range map[string]P{
		`{}`:                         {Level: "low"},
		`{"mode":null}`:              {Level: "low"},
		`{"mode":"","level":""}`:     {Level: "low"},
		`{"mode":"slow","level":""}`: {Mode: "slow", Level: "low"},
	} {
		got, err := s.Decode(json.RawMessage(raw))
		if err != nil || got != want {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", raw, got, err, want)
			continue
		}
		enc, err := s.Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := s.Decode(enc); err != nil || back != got {
			t.Errorf("canonical params %s decode to %+v, %v; want %+v", enc, back, err, got)
		}
	}
}

func TestEncode(t *testing.T) {
	s := newSpec[Full](t)
	p := Full{Role: "admin", Name: "x", Limit: 3, Since: time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("X", 3600)), Wait: time.Minute}
	enc, err := s.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(enc, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"role": "admin", "name": "x", "limit": 3.0, "small": 0.0, "count": 0.0, "big": 0.0, "ratio": 0.0, "half": 0.0,
		"dry_run": false, "force": false, "since": "2026-01-01T00:00:00Z", "until": nil, "wait": "1m0s", "timeout": "0s",
		"GoName": "", "Omit": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Encode (-want +got):\n%s", diff)
	}
}

// Ranged has a cross-field rule.
type Ranged struct {
	From int `json:"from"`
	To   int `json:"to"`
}

func (r Ranged) Validate() error {
	if r.To < r.From {
		return &params.Error{Field: "to", Message: "must not be less than from"}
	}
	if r.To-r.From > 100 {
		return errors.New("the range spans more than 100")
	}
	return nil
}

// PtrValidated validates with a pointer receiver.
type PtrValidated struct {
	N int `json:"n"`
}

func (p *PtrValidated) Validate() error {
	if p.N%2 != 0 {
		return fmt.Errorf("n must be even, got %d", p.N)
	}
	return nil
}

func TestDecodeErrors(t *testing.T) {
	full := newSpec[Full](t)
	ranged := newSpec[Ranged](t)
	ptr := newSpec[PtrValidated](t)
	type strict struct {
		Since time.Time `json:"since" required:"true"`
		Level string    `json:"level" required:"true" enum:"low,high"`
	}
	req := newSpec[strict](t)
	decode := map[string]func(string) error{
		"full":   func(raw string) error { _, err := full.Decode(json.RawMessage(raw)); return err },
		"ranged": func(raw string) error { _, err := ranged.Decode(json.RawMessage(raw)); return err },
		"ptr":    func(raw string) error { _, err := ptr.Decode(json.RawMessage(raw)); return err },
		"strict": func(raw string) error { _, err := req.Decode(json.RawMessage(raw)); return err },
	}
	for _, tc := range []struct {
		name, spec, raw string
		field, message  string
	}{
		{"array", "full", `[1]`, "", "must be a JSON object"},
		{"string", "full", `"x"`, "", "must be a JSON object"},
		{"number", "full", `42`, "", "must be a JSON object"},
		{"malformed", "full", `{"name":`, "", "must be a JSON object"},
		{"trailing data", "full", `{"name":"a"} {}`, "", "must be a JSON object"},
		{"unknown field", "full", `{"name":"a","colour":"red"}`, "colour", "is not a parameter"},
		{"field names are case sensitive", "full", `{"Name":"a"}`, "name", "is required"},
		{"missing required", "full", `{}`, "name", "is required"},
		{"required given null", "full", `{"name":null}`, "name", "is required"},
		{"required given empty", "full", `{"name":""}`, "name", "is required"},
		{"required time", "strict", `{"level":"low"}`, "since", "is required"},
		{"required time given the zero time", "strict", `{"level":"low","since":"0001-01-01T00:00:00Z"}`, "since", "is required"},
		{"out of enum", "full", `{"name":"a","role":"root"}`, "role", "must be one of member, admin, guest"},
		{"enum is case sensitive", "full", `{"name":"a","role":"Admin"}`, "role", "must be one of"},
		{"required enum empty", "strict", `{"since":"2026-01-01T00:00:00Z","level":""}`, "level", "is required"},
		{"string given a number", "full", `{"name":5}`, "name", "must be a string"},
		{"string given an object", "full", `{"name":{"a":1}}`, "name", "must be a string"},
		{"integer given a float", "full", `{"name":"a","limit":1.5}`, "limit", "must be an integer"},
		{"integer given a word", "full", `{"name":"a","limit":"ten"}`, "limit", "must be an integer"},
		{"integer given a bool", "full", `{"name":"a","limit":true}`, "limit", "must be an integer"},
		{"integer given an array", "full", `{"name":"a","limit":[1]}`, "limit", "must be an integer"},
		{"int8 overflow", "full", `{"name":"a","small":128}`, "small", "fits int8"},
		{"uint negative", "full", `{"name":"a","count":-1}`, "count", "non-negative integer"},
		{"uint32 overflow", "full", `{"name":"a","count":4294967296}`, "count", "fits uint32"},
		{"int64 overflow", "full", `{"name":"a","big":9223372036854775808}`, "big", "fits int64"},
		{"number given a word", "full", `{"name":"a","ratio":"half"}`, "ratio", "must be a number"},
		{"number given NaN", "full", `{"name":"a","ratio":"NaN"}`, "ratio", "must be a number"},
		{"number given Inf", "full", `{"name":"a","ratio":"+Inf"}`, "ratio", "must be a number"},
		{"float32 overflow", "full", `{"name":"a","half":1e39}`, "half", "must be a number"},
		{"bool given a string", "full", `{"name":"a","force":"true"}`, "force", "must be true or false"},
		{"bool given a number", "full", `{"name":"a","force":1}`, "force", "must be true or false"},
		{"time without zone", "full", `{"name":"a","since":"2026-01-01T00:00:00"}`, "since", "RFC 3339"},
		{"date only", "full", `{"name":"a","since":"2026-01-01"}`, "since", "RFC 3339"},
		{"time given a number", "full", `{"name":"a","since":1700000000}`, "since", "must be a string (time)"},
		{"time past year 9999 in UTC", "full", `{"name":"a","since":"9999-12-31T23:00:00-02:00"}`, "since", "RFC 3339"},
		{"bad duration", "full", `{"name":"a","wait":"5 minutes"}`, "wait", "duration"},
		{"duration without unit", "full", `{"name":"a","wait":"90"}`, "wait", "duration"},
		{"duration given a number", "full", `{"name":"a","wait":90}`, "wait", "must be a string (duration)"},
		{"Validate returning a params error", "ranged", `{"from":5,"to":1}`, "to", "must not be less than from"},
		{"Validate returning another error", "ranged", `{"from":0,"to":500}`, "", "the range spans more than 100"},
		{"Validate with a pointer receiver", "ptr", `{"n":3}`, "", "n must be even, got 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decode[tc.spec](tc.raw)
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode(%s) = %v, want a *params.Error", tc.raw, err)
			}
			if !errors.Is(err, params.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if pe.Field != tc.field || !strings.Contains(pe.Message, tc.message) {
				t.Errorf("Decode(%s) = field %q message %q; want field %q and a message saying %q", tc.raw, pe.Field, pe.Message, tc.field, tc.message)
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error text %q does not name the field %s", err, tc.field)
			}
		})
	}

	for raw, want := range map[string]Ranged{`{"from":1,"to":2}`: {1, 2}, `{}`: {}} {
		if got, err := ranged.Decode(json.RawMessage(raw)); err != nil || got != want {
			t.Errorf("Decode(%s) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	if got, err := ptr.Decode(json.RawMessage(`{"n":4}`)); err != nil || got.N != 4 {
		t.Errorf("Decode(n=4) = %+v, %v", got, err)
	}
}

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  params.Error
		want string
	}{
		{params.Error{Field: "limit", Message: "must be an integer"}, "invalid param limit: must be an integer"},
		{params.Error{Message: "params must be a JSON object"}, "invalid params: params must be a JSON object"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// Fuzzed is the params type of FuzzDecode: one field of each kind, with
// defaults, an enum and a required field.
type Fuzzed struct {
	S  string        `json:"s" required:"true"`
	E  string        `json:"e" default:"a" enum:"a,b,c"`
	O  string        `json:"o" enum:"x,y"`
	I  int16         `json:"i" default:"7"`
	U  uint8         `json:"u"`
	F  float64       `json:"f"`
	F3 float32       `json:"f3"`
	B  bool          `json:"b" default:"true"`
	T  time.Time     `json:"t"`
	TD time.Time     `json:"td" default:"2026-06-01T00:00:00Z"`
	D  time.Duration `json:"d" default:"5s"`
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"s":"x"}`, `{}`, ``, `null`, `[]`, `{"s":"x","e":"b","i":"-3","u":255,"f":"1e300","f3":"3.4e38","b":false}`,
		`{"s":"x","t":"2026-01-01T00:00:00.123456789+05:30","td":null,"d":"-2562047h47m16.854775808s"}`,
		`{"s":"x","t":"0001-01-01T00:00:00Z"}`, `{"s":"x","td":"0001-01-01T00:00:00Z"}`, `{"s":"x","f":"NaN"}`,
		`{"s":"x","t":"0000-01-01T00:30:00+01:00"}`, `{"s":"\u00e9\ud800","zz":1}`, `{"s":"x","i":"\u0031"}`,
	} {
		f.Add(s)
	}
	spec := newSpec[Fuzzed](f)
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := spec.Decode(json.RawMessage(raw))
		if err != nil {
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode(%q) error %v is not a *params.Error", raw, err)
			}
			return
		}
		enc, err := spec.Encode(p)
		if err != nil {
			t.Fatalf("Decode(%q) accepted %+v but Encode fails: %v", raw, p, err)
		}
		back, err := spec.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v encodes to %s, which does not decode: %v", raw, p, enc, err)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Fatalf("Decode(%q) then Encode %s then Decode (-first +second):\n%s", raw, enc, diff)
		}
		if enc2, err := spec.Encode(back); err != nil || string(enc2) != string(enc) {
			t.Fatalf("Encode is not canonical: %s then %s (%v)", enc, enc2, err)
		}
	})
}
