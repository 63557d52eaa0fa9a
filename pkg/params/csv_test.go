package params_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/params"
)

type csvParams struct {
	Users  params.CSV `json:"users" required:"true" headers:"id, email" help:"id,email per line"`
	DryRun bool       `json:"dry_run"`
}

func TestCSVParam(t *testing.T) {
	spec, err := params.NewSpec[csvParams]()
	if err != nil {
		t.Fatal(err)
	}
	f := spec.Schema().Fields[0]
	if f.Type != params.TypeCSV || !f.Required || !cmp.Equal(f.Headers, []string{"id", "email"}) {
		t.Fatalf("schema field %+v", f)
	}
	text := "\uFEFFid, email ,note\n1,a@x.io,\"x, <y> & z\"\n2,b@x.io,\n"
	raw, _ := json.Marshal(map[string]any{"users": text})
	p, err := spec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Users.Len() != 2 || !cmp.Equal(p.Users.Header(), []string{"id", "email", "note"}) {
		t.Fatalf("decoded %d rows, header %v", p.Users.Len(), p.Users.Header())
	}
	if diff := cmp.Diff(map[string]string{"id": "1", "email": "a@x.io", "note": "x, <y> & z"}, p.Users.Row(1)); diff != "" {
		t.Errorf("row 1 (-want +got):\n%s", diff)
	}
	if p.Users.Row(0) != nil || p.Users.Row(3) != nil {
		t.Error("rows outside 1..Len are not nil")
	}
	enc, err := spec.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(enc), `\u003c`) {
		t.Errorf("encoded with HTML escapes: %s", enc)
	}
	again, err := spec.Decode(enc)
	if err != nil || again.Users.Text() != text {
		t.Errorf("round trip: %v, text %q", err, again.Users.Text())
	}
}

func TestCSVParamRefusesBadFiles(t *testing.T) {
	spec, err := params.NewSpec[csvParams]()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		raw  any
		want string
	}{
		{"missing", nil, "is required"},
		{"not a string", 5, "must be a string"},
		{"empty", "", "is empty"},
		{"blank", " \n\n", "is empty"},
		{"header only", "id,email\n", "has a header but no rows"},
		{"ragged row", "id,email\n1,a@x.io\n2\n", "line 3 has 1 fields, the header has 2"},
		{"long row", "id,email\n1,a@x.io,extra\n", "line 2 has 3 fields, the header has 2"},
		{"missing header", "id,mail\n1,a@x.io\n", "header lacks the column(s) email (it has id, mail)"},
		{"duplicate header", "id,email,id\n1,a,2\n", `names column "id" twice`},
		{"empty header name", "id,,email\n1,2,3\n", "header column 2 has no name"},
		{"not UTF-8", json.RawMessage("\"id,email\\n1,caf\xe9@x.io\\n\""), "is not UTF-8 text (line 2"},
		{"control character", "id,email\n1,a\x00b\n", "contains a control character (line 2)"},
		{"bad quoting", "id,email\n1,\"a\"b\n", "is not valid CSV: line 2"},
		{"too large", "id,email\n" + strings.Repeat("1,a@x.io\n", params.MaxCSVBytes/9+1), "a CSV holds at most 5242880 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := map[string]any{}
			if tt.raw != nil {
				obj["users"] = tt.raw
			}
			raw, _ := json.Marshal(obj)
			_, err := spec.Decode(raw)
			var pe *params.Error
			if !errors.As(err, &pe) || pe.Field != "users" || !strings.Contains(pe.Message, tt.want) {
				t.Fatalf("Decode: %v, want a params error on users containing %q", err, tt.want)
			}
		})
	}
}

func TestCSVFieldWithDefaultRefused(t *testing.T) {
	type bad struct {
		F params.CSV `json:"f" default:"a\n1"`
	}
	if _, err := params.NewSpec[bad](); err == nil || !strings.Contains(err.Error(), "cannot have a default") {
		t.Fatalf("NewSpec: %v", err)
	}
}

// FuzzParseCSV: any text is a CSV with rows as long as its header, or an
// error; never a panic.
func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a\n\"x\ny\"\n", "a,b\n1\n", "\uFEFFa\n1", "a,a\n1,2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := params.ParseCSV(s, nil)
		if err != nil {
			return
		}
		if c.Len() == 0 {
			t.Fatal("a CSV without rows was accepted")
		}
		for n := 1; n <= c.Len(); n++ {
			if len(c.Row(n)) != len(c.Header()) {
				t.Fatalf("row %d has %d fields, header %d", n, len(c.Row(n)), len(c.Header()))
			}
		}
	})
}

func TestParseCSVRefusesBytesNotUTF8(t *testing.T) {
	if _, err := params.ParseCSV("id\n1\ncaf\xe9\n", nil); err == nil || !strings.Contains(err.Error(), "is not UTF-8 text (line 3)") {
		t.Fatalf("ParseCSV: %v", err)
	}
}
