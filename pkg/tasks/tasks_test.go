package tasks_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/tasks"
)

func TestTaskID(t *testing.T) {
	for _, tc := range []struct {
		p    tasks.BatchPayload
		want string
	}{
		{tasks.BatchPayload{RunID: 7, Seq: 1}, "7:1"},
		{tasks.BatchPayload{RunID: 7, Seq: 1, Definition: "fill"}, "7:1"},
		{tasks.BatchPayload{RunID: 7, Seq: 12, Retry: 1}, "7:12:1"},
		{tasks.BatchPayload{RunID: math.MaxInt64, Seq: math.MaxInt64, Retry: math.MaxInt32}, "9223372036854775807:9223372036854775807:2147483647"},
		{tasks.BatchPayload{RunID: 3, Seq: 4, Rescue: "r2"}, "3:4:r2"},
		{tasks.BatchPayload{RunID: 3, Seq: 4, Retry: 5, Rescue: "e1"}, "3:4:5:e1"},
	} {
		if got := tc.p.TaskID(); got != tc.want {
			t.Errorf("%+v.TaskID() = %q, want %q", tc.p, got, tc.want)
		}
		if tc.p.Rescue == "" {
			if got := tasks.TaskID(tc.p.RunID, tc.p.Seq, tc.p.Retry); got != tc.want {
				t.Errorf("TaskID(%d, %d, %d) = %q, want %q", tc.p.RunID, tc.p.Seq, tc.p.Retry, got, tc.want)
			}
		}
		run, seq, retry, err := parseTaskID(tc.want)
		if err != nil || run != tc.p.RunID || seq != tc.p.Seq || retry != tc.p.Retry {
			t.Errorf("ParseTaskID(%q) = %d, %d, %d, %v; want %d, %d, %d", tc.want, run, seq, retry, err, tc.p.RunID, tc.p.Seq, tc.p.Retry)
		}
	}
	// Two enqueues of one batch share an id; a manual retry does not.
	first, second := tasks.TaskID(1, 2, 0), tasks.TaskID(1, 2, 0)
	if first != second || first == tasks.TaskID(1, 2, 1) || tasks.TaskID(1, 23, 0) == tasks.TaskID(12, 3, 0) {
		t.Error("task ids are not deterministic and distinct")
	}
}

func TestParseTaskIDErrors(t *testing.T) {
	for _, id := range []string{
		"", ":", "::", "1", "1:", ":1", "1::2", "1:2:", "1:2:3:4", "a:1", "1:b", "1:2:c",
		"0:1", "1:0", "-1:2", "1:-2", "1:2:0", "1:2:-1",
		" 1:2", "1:2 ", "1 :2", "01:2", "1:02", "1:2:03", "+1:2", "1:+2", "1:2:+3",
		"9223372036854775808:1", "1:9223372036854775808", "1.0:2", "0x1:2", "1_000:2",
		"1:2:r", "1:2:x1", "1:2:r-1", "1:2:r+1", "1:2:r01", "1:2:e 1", "r1:2", "1:r2", "1:2:r1:e1", "1:2:3:4:r1",
	} {
		if run, seq, retry, err := parseTaskID(id); err == nil {
			t.Errorf("ParseTaskID(%q) = %d, %d, %d; want an error", id, run, seq, retry)
		} else if !strings.Contains(err.Error(), strconv.Quote(id)) {
			t.Errorf("ParseTaskID(%q) error %q does not quote the id", id, err)
		}
	}
}

func TestDecodeBatchPayload(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want tasks.BatchPayload
	}{
		{`{"run":1,"seq":2}`, tasks.BatchPayload{RunID: 1, Seq: 2}},
		{`{"run":1,"seq":2,"retry":3,"def":"fill_plans"}`, tasks.BatchPayload{RunID: 1, Seq: 2, Retry: 3, Definition: "fill_plans"}},
		{`{"run":1,"seq":2,"rescue":"r1"}`, tasks.BatchPayload{RunID: 1, Seq: 2, Rescue: "r1"}},
		// Fields a newer version adds do not break an older worker.
		{`{"run":9,"seq":8,"future":true}`, tasks.BatchPayload{RunID: 9, Seq: 8}},
	} {
		got, err := tasks.DecodeBatchPayload([]byte(tc.raw))
		if err != nil {
			t.Errorf("DecodeBatchPayload(%s): %v", tc.raw, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("DecodeBatchPayload(%s) (-want +got):\n%s", tc.raw, diff)
		}
		// What is decoded encodes back to the same payload.
		b, _ := json.Marshal(got)
		if again, err := tasks.DecodeBatchPayload(b); err != nil || again != got {
			t.Errorf("payload %s decodes to %+v, %v; want %+v", b, again, err, got)
		}
	}

	for _, tc := range []struct {
		raw, want string
	}{
		{``, "decode batch payload"},
		{`not json`, "decode batch payload"},
		{`null`, "out of range"},
		{`[]`, "decode batch payload"},
		{`{}`, "run 0 seq 0 retry 0 out of range"},
		{`{"run":1}`, "run 1 seq 0 retry 0 out of range"},
		{`{"seq":1}`, "run 0 seq 1"},
		{`{"run":-1,"seq":1}`, "run -1"},
		{`{"run":1,"seq":2,"retry":-1}`, "retry -1 out of range"},
		{`{"run":"1","seq":2}`, "decode batch payload"},
		{`{"run":1.5,"seq":2}`, "decode batch payload"},
		{`{"run":1,"seq":99999999999999999999}`, "decode batch payload"},
		{`{"run":1,"seq":2} x`, "decode batch payload"},
		{`{"run":1,"seq":2,"rescue":"x:y"}`, "rescue"},
	} {
		p, err := tasks.DecodeBatchPayload([]byte(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeBatchPayload(%s) = %+v, %v; want an error saying %q", tc.raw, p, err, tc.want)
		}
	}
}

func FuzzParseTaskID(f *testing.F) {
	for _, s := range []string{"1:2", "7:12:1", "3:4:r2", "3:4:5:e1", "01:2", "+1:2", "1:2:0", "1:2:r+1", "", "::", "9223372036854775807:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		run, seq, retry, err := parseTaskID(id)
		if err != nil {
			return
		}
		if run <= 0 || seq <= 0 || retry < 0 {
			t.Fatalf("ParseTaskID(%q) = %d, %d, %d: out of range", id, run, seq, retry)
		}
		// Only ids TaskID makes are accepted: the same batch never has two
		// ids.
		base := tasks.TaskID(run, seq, retry)
		if id != base && !strings.HasPrefix(id, base+":") {
			t.Fatalf("ParseTaskID(%q) = %d, %d, %d, whose id is %q", id, run, seq, retry, base)
		}
		if id != base {
			p := tasks.BatchPayload{RunID: run, Seq: seq, Retry: retry, Rescue: strings.TrimPrefix(id, base+":")}
			if p.TaskID() != id {
				t.Fatalf("ParseTaskID(%q) accepted a rescue suffix that payload %+v does not make", id, p)
			}
			if _, err := tasks.DecodeBatchPayload(mustJSON(t, p)); err != nil {
				t.Fatalf("ParseTaskID(%q) accepted a rescue suffix that the payload decoder refuses: %v", id, err)
			}
		}
	})
}

func FuzzDecodeBatchPayload(f *testing.F) {
	for _, s := range []string{`{"run":1,"seq":2}`, `{"run":1,"seq":2,"retry":3,"def":"x","rescue":"e2"}`, `{}`, `null`, `{"run":1,"seq":2,"rescue":"::"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tasks.DecodeBatchPayload(b)
		if err != nil {
			return
		}
		run, seq, retry, err := parseTaskID(p.TaskID())
		if err != nil || run != p.RunID || seq != p.Seq || retry != p.Retry {
			t.Fatalf("payload %+v has task id %q, which parses to %d, %d, %d, %v", p, p.TaskID(), run, seq, retry, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseTaskID parses a task id made by tasks.TaskID (a rescue suffix is
// ignored), accepting only the canonical form ("01:2" and "+1:2" are not
// "1:2"). The tests use it as an oracle: one batch never goes by two ids.
func parseTaskID(id string) (runID, seq int64, retry int, err error) {
	parts := strings.Split(id, ":")
	if n := len(parts); n > 2 && (strings.HasPrefix(parts[n-1], "r") || strings.HasPrefix(parts[n-1], "e")) {
		if !validRescue(parts[n-1]) {
			return 0, 0, 0, fmt.Errorf("task id %q: bad rescue suffix", id)
		}
		parts = parts[:n-1]
	}
	defer func() {
		if err == nil && tasks.TaskID(runID, seq, retry) != strings.Join(parts, ":") {
			runID, seq, retry = 0, 0, 0
			err = fmt.Errorf("task id %q: not in canonical form", id)
		}
	}()
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, fmt.Errorf("task id %q: want <run>:<seq>[:<retry>]", id)
	}
	if runID, err = strconv.ParseInt(parts[0], 10, 64); err != nil || runID <= 0 {
		return 0, 0, 0, fmt.Errorf("task id %q: bad run id", id)
	}
	if seq, err = strconv.ParseInt(parts[1], 10, 64); err != nil || seq <= 0 {
		return 0, 0, 0, fmt.Errorf("task id %q: bad batch seq", id)
	}
	if len(parts) == 3 {
		if retry, err = strconv.Atoi(parts[2]); err != nil || retry <= 0 {
			return 0, 0, 0, fmt.Errorf("task id %q: bad retry", id)
		}
	}
	return runID, seq, retry, nil
}

// validRescue reports whether s is a rescue suffix as the scheduler makes
// them: "r" or "e" and a number without sign or leading zeros.
func validRescue(s string) bool {
	if len(s) < 2 || (s[0] != 'r' && s[0] != 'e') {
		return false
	}
	n, err := strconv.Atoi(s[1:])
	return err == nil && n >= 0 && strconv.Itoa(n) == s[1:]
}
