package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// TestRunOptionBounds: durations and rates beyond sane bounds are refused
// before they can overflow.
func TestRunOptionBounds(t *testing.T) {
	e := newAPIEnv(t, nil)
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"definition":"fix_user_emails","sleep_ms":20000000000000}`, "sleep_ms"},
		{`{"definition":"fix_user_emails","sleep_ms":3600001}`, "sleep_ms"},
		{`{"definition":"fix_user_emails","batch_timeout_ms":20000000000000}`, "batch_timeout_ms"},
		{`{"definition":"fix_user_emails","batch_timeout_ms":86400001}`, "batch_timeout_ms"},
		{`{"definition":"fix_user_emails","rows_per_second":2000000000}`, "rows_per_second"},
		{`{"definition":"fix_user_emails","max_in_flight":1000000}`, "max_in_flight"},
		{`{"definition":"fix_user_emails","batch_size":2000000}`, "batch_size"},
		{`{"definition":"fix_user_emails","error_budget":2000000000}`, "error_budget"},
	} {
		code, ed, _ := e.raw("POST", "/api/v1/runs", aliceToken, tc.body)
		if code != 422 || ed.Field != tc.field {
			t.Errorf("%s: %d %+v, want 422 naming %s", tc.body, code, ed, tc.field)
		}
	}
	code, ed, _ := e.raw("POST", "/api/v1/runs", aliceToken, `{"definition":"fix_user_emails","sleep_ms":3600000,"batch_timeout_ms":86400000}`)
	if code != 201 {
		t.Errorf("the largest sleep and timeout: %d %+v", code, ed)
	}
	if err := (store.RunOptions{BatchSize: 1, MaxAttempts: 1, MaxInFlight: 1, Sleep: 2 * time.Hour}).Validate(); err == nil {
		t.Error("RunOptions.Validate accepted a 2h sleep")
	}
}

// TestBadBytes: invalid UTF-8 and NUL in query filters and path params are
// refused as invalid input naming the field, never reach the store.
func TestBadBytes(t *testing.T) {
	e := newAPIEnv(t, nil)
	for _, tc := range []struct{ path, field string }{
		{"/api/v1/runs?status=%ff", "status"},
		{"/api/v1/runs?definition=a%00b", "definition"},
		{"/api/v1/runs?definition=%c3%28", "definition"},
		{"/api/v1/runs?cursor=%00", "cursor"},
		{"/api/v1/runs?created_by=%fe", "created_by"},
		{"/api/v1/runs/1/batches?status=%00", "status"},
		{"/api/v1/definitions/a%00b/preview", "name"},
		{"/api/v1/definitions/%ff/preview", "name"},
	} {
		code, ed, _ := e.raw("GET", tc.path, aliceToken, "")
		if code != 422 || ed.Code != "invalid" || ed.Field != tc.field {
			t.Errorf("GET %s: %d %+v, want 422 naming %s", tc.path, code, ed, tc.field)
		}
	}
	for _, p := range []string{"/api/v1/flows/a%00b/activate", "/api/v1/flows/%ff%fe/trigger"} {
		code, ed, _ := e.raw("POST", p, aliceToken, "")
		if code != 422 || ed.Field != "name" {
			t.Errorf("POST %s: %d %+v, want 422 naming name", p, code, ed)
		}
	}

	u := newUIEnv(t, 0, nil)
	c := u.client()
	c.login(uiAliceToken)
	for _, p := range []string{"/runs?q=%ff", "/runs?definition=%00", "/runs?cursor=%fe", "/flows/a%00", "/definitions/%ff"} {
		if r := c.get(p); r.code != 422 {
			t.Errorf("UI GET %s: %d, want 422", p, r.code)
		}
	}
}

// TestStrictJSON: trailing data, keys in another case and duplicate keys
// are refused, naming the key.
func TestStrictJSON(t *testing.T) {
	e := newAPIEnv(t, nil)
	for _, tc := range []struct {
		name, body string
		status     int
		field, msg string
	}{
		{"trailing brackets", `{"definition":"fix_user_emails"}]]`, 400, "", "trailing"},
		{"trailing garbage", `{"definition":"fix_user_emails"}x`, 400, "", ""},
		{"key in another case", `{"definition":"fix_user_emails","Batch_Size":5}`, 422, "Batch_Size", "batch_size"},
		{"definition in another case", `{"DEFINITION":"fix_user_emails"}`, 422, "DEFINITION", ""},
		{"duplicate key", `{"definition":"fix_user_emails","batch_size":5,"batch_size":6}`, 422, "batch_size", "duplicate"},
		{"duplicate key in params", `{"definition":"add_default_role_to_users","params":{"role":"admin","role":"member"}}`, 422, "params.role", "duplicate"},
	} {
		code, ed, _ := e.raw("POST", "/api/v1/runs", aliceToken, tc.body)
		if code != tc.status || ed.Field != tc.field || !strings.Contains(ed.Message, tc.msg) {
			t.Errorf("%s: %d %+v, want %d field %q message containing %q", tc.name, code, ed, tc.status, tc.field, tc.msg)
		}
	}
	if code, ed, _ := e.raw("POST", "/api/v1/runs", aliceToken, "{\"definition\":\"fix_user_emails\"}\n "); code != 201 {
		t.Errorf("trailing white space: %d %+v", code, ed)
	}
}
