package web

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dripflow/dripflow/pkg/api"
)

func TestDecodeStrict(t *testing.T) {
	type inner struct {
		Name string `json:"name"`
	}
	type embedded struct {
		Shared string `json:"shared"`
	}
	type outer struct {
		embedded
		BatchSize *int            `json:"batch_size"`
		Inner     inner           `json:"inner"`
		Items     []inner         `json:"items"`
		Raw       json.RawMessage `json:"raw"`
		Skipped   string          `json:"-"`
	}
	for _, tc := range []struct {
		in          string
		status      int // 0: accepted
		field, want string
	}{
		{`{"batch_size":5,"inner":{"name":"x"},"items":[{"name":"y"}],"raw":{"A":1,"a":2},"shared":"s"}`, 0, "", ""},
		{" {} \n\t", 0, "", ""},
		{`{}]]`, 400, "", "trailing"},
		{`{} {}`, 400, "", "trailing"},
		{`{}x`, 400, "", "trailing"},
		{``, 400, "", "empty"},
		{`{"batch_size":`, 400, "", "truncated"},
		{`{"batch_size":5,}`, 400, "", ""},
		{`{"Batch_Size":5}`, 422, "Batch_Size", `did you mean "batch_size"`},
		{`{"inner":{"NAME":"x"}}`, 422, "inner.NAME", `did you mean "inner.name"`},
		{`{"items":[{"name":"a"},{"nam":"b"}]}`, 422, "items[1].nam", "unknown field"},
		{`{"batch_size":5,"batch_size":6}`, 422, "batch_size", "duplicate"},
		{`{"raw":{"a":1,"a":2}}`, 422, "raw.a", "duplicate"},
		{`{"items":[{"name":"a","name":"b"}]}`, 422, "items[0].name", "duplicate"},
		{`{"inner":{"name":"a\u0000b"}}`, 422, "inner.name", "NUL"},
		{`{"Skipped":"x"}`, 422, "Skipped", "unknown field"},
		{`{"-":"x"}`, 422, "-", "unknown field"},
		{strings.Repeat("[", 2000) + strings.Repeat("]", 2000), 400, "", "nested"},
	} {
		var v outer
		err := decodeStrict([]byte(tc.in), &v)
		var se *strictError
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.status == 0:
		case !errors.As(err, &se):
			t.Errorf("%.60s: %v, want a %d", tc.in, err, tc.status)
		case se.Status != tc.status || se.Field != tc.field || !strings.Contains(se.Message, tc.want):
			t.Errorf("%.60s: %d %q %q, want %d %q containing %q", tc.in, se.Status, se.Field, se.Message, tc.status, tc.field, tc.want)
		}
	}
}

// FuzzDecodeStrict: whatever the body, decodeStrict does not panic, and
// what it accepts encoding/json decodes to the same value; what encoding/json
// writes, decodeStrict reads back.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"definition":"fix_user_emails","params":{"role":"admin"},"batch_size":5}`,
		`{"definition":"x","sleep_ms":1,"batch_timeout_ms":2,"start_at":"2026-01-02T15:04:05Z"}`,
		`{"definition":"x"}]]`, `{"Batch_Size":1}`, `{"a":1,"a":2}`, `[1]`, `null`, `"x"`, ``, `{`,
		`{"params":{"a":{"b":[{"c":1,"c":2}]}}}`, `{"definition":"\u0000"}`, "{\"definition\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict api.CreateRun
		if err := decodeStrict(data, &strict); err != nil {
			var se *strictError
			var ute *json.UnmarshalTypeError
			if !errors.As(err, &se) && !errors.As(err, &ute) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		var loose api.CreateRun
		if err := json.Unmarshal(data, &loose); err != nil {
			t.Fatalf("decodeStrict accepted what encoding/json refuses: %v", err)
		}
		a, _ := json.Marshal(strict)
		b, _ := json.Marshal(loose)
		if string(a) != string(b) {
			t.Fatalf("strict %s, loose %s", a, b)
		}
		var again api.CreateRun
		if err := decodeStrict(a, &again); err != nil {
			t.Fatalf("decodeStrict refuses encoding/json's own %s: %v", a, err)
		}
		if !reflect.DeepEqual(mustJSON(t, again), string(a)) {
			t.Fatalf("round trip changed %s", a)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzQuery: the query checks never panic, and what they let through is
// valid UTF-8 without NUL, for any query string.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"status=running,failed&definition=x&cursor=abc&limit=5", "status=%ff", "q=%00", "%ff=1", "definition=%c3%28", "a=1&a=2", ";;&&=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		if d := checkQuery(q); d != nil {
			if d.Code != codeInvalid || d.Field == "" {
				t.Fatalf("error without code or field: %+v", d)
			}
			return
		}
		for k, vs := range q {
			for _, v := range append([]string{k}, vs...) {
				if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
					t.Fatalf("let %q through", v)
				}
			}
		}
		for _, st := range splitList(q["status"]) {
			if strings.TrimSpace(st) != st || st == "" || strings.Contains(st, ",") {
				t.Fatalf("splitList gave %q", st)
			}
		}
	})
}
