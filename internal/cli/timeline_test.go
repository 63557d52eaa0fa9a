package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dripflow/dripflow/pkg/store"
)

// `runs show --timeline` prints the run, then who did what to it, oldest
// first, each action marked as done from the CLI.
func TestRunsShowTimeline(t *testing.T) {
	url, st := server(t)
	code, out, errs := run(t, url, "start", "fix_user_emails", "--start-at", "2099-01-01T00:00:00Z", "--output", "json")
	if code != ExitOK {
		t.Fatalf("start: %d %s", code, errs)
	}
	var r struct{ ID string }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"start-now", "pause", "resume", "cancel"} {
		if code, _, errs := run(t, url, cmd, r.ID); code != ExitOK {
			t.Fatalf("%s: %d %s", cmd, code, errs)
		}
	}
	code, out, errs = run(t, url, "show", r.ID, "--timeline")
	if code != ExitOK {
		t.Fatalf("show --timeline: %d %s", code, errs)
	}
	head, tl, ok := strings.Cut(out, "timeline:\n")
	if !ok || !strings.Contains(head, "status") || !strings.Contains(head, "cancelled") {
		t.Fatalf("show --timeline prints no run before its timeline:\n%s", out)
	}
	line := regexp.MustCompile(`^  \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{2}:\d{2}\s+(\S+)\s+(\S+)\s+(.*)$`)
	want := []struct{ kind, msg string }{
		{"created", "created by erin (CLI): backfill fix_user_emails"},
		{"started", "started now by erin (CLI), before its start time"},
		{"paused", "paused by erin (CLI)"},
		{"resumed", "resumed by erin (CLI)"},
		{"cancelled", "cancelled by erin (CLI)"},
	}
	lines := strings.Split(strings.TrimRight(tl, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("timeline has %d lines, want %d:\n%s", len(lines), len(want), tl)
	}
	for i, w := range want {
		m := line.FindStringSubmatch(lines[i])
		if m == nil || m[1] != w.kind || m[2] != "user:erin" || !strings.HasPrefix(m[3], w.msg) {
			t.Errorf("timeline line %d = %q, want %s by user:erin: %s", i, lines[i], w.kind, w.msg)
		}
	}

	// JSON: the run and its events.
	code, out, _ = run(t, url, "show", r.ID, "--timeline", "--output", "json")
	var doc struct {
		Run      struct{ ID, Status string }
		Timeline []struct{ ID, Kind, Actor string }
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &doc) != nil || doc.Run.ID != r.ID || doc.Run.Status != "cancelled" ||
		len(doc.Timeline) != len(want) || doc.Timeline[0].Kind != "created" || doc.Timeline[len(want)-1].ID != strconv.Itoa(len(want)) {
		t.Fatalf("show --timeline --output json: %d %q", code, out)
	}

	// A run without events says so; without --timeline nothing is added.
	bare, err := st.CreateRun(context.Background(), store.NewRun{Definition: "fix_user_emails", Kind: store.KindBackfill,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(bare.ID, 10)
	if code, out, _ := run(t, url, "show", id, "--timeline"); code != ExitOK || !strings.HasSuffix(out, "timeline:\n  (no events)\n") {
		t.Fatalf("show --timeline of a run without events: %d %q", code, out)
	}
	if _, out, _ := run(t, url, "show", id); strings.Contains(out, "timeline") {
		t.Fatalf("show without --timeline prints a timeline: %q", out)
	}
	if code, _, errs := run(t, url, "pause", id, "--timeline"); code != ExitUsage || !strings.Contains(errs, "timeline") {
		t.Fatalf("pause --timeline: %d %q, want a usage error", code, errs)
	}
}
