package file_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/flows"
)

func buildSink(t *testing.T, cfg *file.Sink) flows.Sink {
	t.Helper()
	s, err := cfg.Build(context.Background(), nil)
	if err != nil {
		t.Fatalf("build %+v: %v", cfg, err)
	}
	return s
}

// listDir returns the names in dir, sorted, and fails the test if the
// sink's temporary directory holds anything.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() == ".dripflow-tmp" {
			tmps, err := os.ReadDir(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, tmp := range tmps {
				t.Errorf("temporary file %s left behind", tmp.Name())
			}
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func batchOf(n int) *flows.Batch {
	b := &flows.Batch{Flow: "orders/export", Run: 7, Seq: 3}
	for i := 1; i <= n; i++ {
		b.Records = append(b.Records, flows.Record{"id": i, "name": strings.Repeat("x", i)})
	}
	return b
}

// TestSinkJSONL: a batch becomes one file named after the flow, run and
// seq; writing it again (a retry) replaces it, so the directory holds each
// record once; no temporary file remains.
func TestSinkJSONL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out", "nested")
	cfg := &file.Sink{Dir: dir, Format: file.JSONL}
	s := buildSink(t, cfg)
	if s.Guarantee() != flows.Idempotent || cfg.Guarantee() != flows.Idempotent {
		t.Errorf("guarantee %q, want idempotent", s.Guarantee())
	}
	ctx := context.Background()
	for range 2 {
		n, err := s.Write(ctx, batchOf(3))
		if err != nil || n != 3 {
			t.Fatalf("Write = %d, %v; want 3", n, err)
		}
	}
	if diff := cmp.Diff([]string{"orders_export-000007-000003-0000.jsonl"}, listDir(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	lines := readLines(t, filepath.Join(dir, "orders_export-000007-000003-0000.jsonl"))
	want := []string{`{"id":1,"name":"x"}`, `{"id":2,"name":"xx"}`, `{"id":3,"name":"xxx"}`}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("file content (-want +got):\n%s", diff)
	}
	// An empty batch writes nothing.
	if n, err := s.Write(ctx, &flows.Batch{Flow: "f", Run: 1, Seq: 1}); n != 0 || err != nil {
		t.Errorf("Write of no records = %d, %v", n, err)
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Errorf("an empty batch made files: %v", got)
	}
}

// TestSinkRolling: max_records and max_bytes split a batch into numbered
// parts; a retry that rolls into fewer parts removes the extra ones, and
// temporary files a crashed attempt left are removed.
func TestSinkRolling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	name := func(part int) string { return "exp-000007-000003-000" + string(rune('0'+part)) + ".jsonl" }

	s := buildSink(t, &file.Sink{Dir: dir, Format: file.JSONL, Prefix: "exp", MaxRecords: 2})
	if _, err := s.Write(ctx, batchOf(5)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{name(0), name(1), name(2)}, listDir(t, dir)); diff != "" {
		t.Errorf("max_records 2, 5 records: files (-want +got):\n%s", diff)
	}
	if got := readLines(t, filepath.Join(dir, name(2))); !cmp.Equal(got, []string{`{"id":5,"name":"xxxxx"}`}) {
		t.Errorf("last part holds %v", got)
	}

	// A crashed attempt left a temporary file; the limits changed since.
	crashed := filepath.Join(dir, ".dripflow-tmp", name(0)+".0123abcd")
	writeFile(t, crashed, `{"id":1,"na`)
	// Lines are 19+1, 20+1, 21+1, 22+1, 23+1 bytes: at most 45 bytes a part
	// holds two short lines, then one line each.
	s = buildSink(t, &file.Sink{Dir: dir, Format: file.JSONL, Prefix: "exp", MaxBytes: 45})
	if _, err := s.Write(ctx, batchOf(3)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{name(0), name(1)}, listDir(t, dir)); diff != "" {
		t.Errorf("retry with max_bytes 45: files (-want +got):\n%s", diff)
	}
	for part, want := range [][]string{{`{"id":1,"name":"x"}`, `{"id":2,"name":"xx"}`}, {`{"id":3,"name":"xxx"}`}} {
		if got := readLines(t, filepath.Join(dir, name(part))); !cmp.Equal(got, want) {
			t.Errorf("part %d holds %v, want %v", part, got, want)
		}
	}
	// A record larger than max_bytes gets a part of its own.
	s = buildSink(t, &file.Sink{Dir: dir, Format: file.JSONL, Prefix: "big", MaxBytes: 5})
	if _, err := s.Write(ctx, batchOf(2)); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 4 {
		t.Errorf("max_bytes smaller than each record: files %v, want one part per record", got)
	}
}

// TestSinkCSV: a CSV file has a header row (the configured columns, or
// every field sorted) in each part; values are rendered as text.
func TestSinkCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	b := &flows.Batch{Flow: "f", Run: 1, Seq: 2, Records: []flows.Record{
		{"id": int64(1), "name": "Doe, \"Jo\"", "at": at, "tags": []any{"a"}},
		{"id": int64(2), "score": 1.5, "at": nil},
	}}
	if _, err := buildSink(t, &file.Sink{Dir: dir, Format: file.CSV, MaxRecords: 1}).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"f-000001-000002-0000.csv": {"at,id,name,score,tags", `2026-05-01T08:00:00Z,1,"Doe, ""Jo""",,"[""a""]"`},
		"f-000001-000002-0001.csv": {"at,id,name,score,tags", ",2,,1.5,"},
	}
	for name, lines := range want {
		if diff := cmp.Diff(lines, readLines(t, filepath.Join(dir, name))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	dir2 := t.TempDir()
	if _, err := buildSink(t, &file.Sink{Dir: dir2, Format: file.CSV, Columns: []string{"name", "id"}, Comma: ";", Prefix: "p"}).Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"name;id", `"Doe, ""Jo""";1`, ";2"}, readLines(t, filepath.Join(dir2, "p-000001-000002-0000.csv"))); diff != "" {
		t.Errorf("columns name,id (-want +got):\n%s", diff)
	}
}

// TestSinkThenSource: what the sink writes, a file source over the same
// directory reads back, skipping the sink's temporary directory.
func TestSinkThenSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := buildSink(t, &file.Sink{Dir: dir, Format: file.JSONL, MaxRecords: 2})
	for seq := int64(1); seq <= 3; seq++ {
		b := batchOf(3)
		b.Seq = seq
		if _, err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, ".dripflow-tmp", "half"), `{"id": `)
	got := records(plan(t, build(t, &file.Source{Path: dir, Format: file.JSONL, NoMetadata: true}), "", 100))
	if len(got) != 9 {
		t.Fatalf("read back %d records, want 9: %v", len(got), got)
	}
	raw, _ := json.Marshal(got[:3])
	if string(raw) != `[{"id":1,"name":"x"},{"id":2,"name":"xx"},{"id":3,"name":"xxx"}]` {
		t.Errorf("first batch read back as %s", raw)
	}
}

// TestSinkBuildTouchesNothing: building the sink (as a scheduler does,
// perhaps where the directory is not writable) creates nothing; the first
// write creates the directory.
func TestSinkBuildTouchesNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "later")
	s := buildSink(t, &file.Sink{Dir: dir, Format: file.JSONL})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Build made %s (%v)", dir, err)
	}
	if _, err := s.Write(context.Background(), batchOf(1)); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 1 {
		t.Errorf("files after the first write: %v", got)
	}
	blocked := filepath.Join(t.TempDir(), "file")
	writeFile(t, blocked, "x")
	_, err := buildSink(t, &file.Sink{Dir: filepath.Join(blocked, "sub"), Format: file.JSONL}).Write(context.Background(), batchOf(1))
	if err == nil || !strings.Contains(err.Error(), "orders/export/7/3") {
		t.Errorf("Write under a file: %v; want an error naming the batch", err)
	}
}
