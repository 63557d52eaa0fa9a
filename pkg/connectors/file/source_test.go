package file_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/flows"
)

func build(t *testing.T, cfg *file.Source) flows.Source {
	t.Helper()
	src, err := cfg.Build(context.Background(), nil)
	if err != nil {
		t.Fatalf("build %+v: %v", cfg, err)
	}
	return src
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// split is one planned range and the records read from it.
type split struct {
	lo, hi string
	recs   []flows.Record
}

// plan plans src from lo with batches of size, reading each range twice
// (a retried batch must read the same records); it returns the splits.
func plan(t *testing.T, src flows.Source, lo string, size int) []split {
	t.Helper()
	ctx := context.Background()
	var out []split
	for range 1000 {
		s, err := src.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%s, %d): %v", lo, size, err)
		}
		if s.Hi == "" {
			return out
		}
		recs, err := src.Read(ctx, lo, s.Hi)
		if err != nil {
			t.Fatalf("Read(%s, %s]: %v", lo, s.Hi, err)
		}
		if len(recs) == 0 || len(recs) > size {
			t.Errorf("range (%s, %s] of a plan by %d holds %d records", lo, s.Hi, size, len(recs))
		}
		again, err := src.Read(ctx, lo, s.Hi)
		if err != nil || !cmp.Equal(recs, again) {
			t.Errorf("reading (%s, %s] again gives other records (%v):\n%s", lo, s.Hi, err, cmp.Diff(recs, again))
		}
		out = append(out, split{lo: lo, hi: s.Hi, recs: recs})
		lo = s.Hi
	}
	t.Fatal("Next never reaches the end")
	return nil
}

func records(splits []split) []flows.Record {
	var out []flows.Record
	for _, s := range splits {
		out = append(out, s.recs...)
	}
	return out
}

func last(splits []split, from string) string {
	if len(splits) == 0 {
		return from
	}
	return splits[len(splits)-1].hi
}

func fileOf(t *testing.T, pos string) string {
	t.Helper()
	var p []any
	if err := json.Unmarshal([]byte(pos), &p); err != nil || len(p) != 2 {
		t.Fatalf("position %q is not [name, offset]: %v", pos, err)
	}
	return p[0].(string)
}

// TestSourceJSONLDirectory: a directory of JSONL files is read in name
// order, ranges never span files, every record carries _file and _offset,
// a half-written last line waits until it is complete, and a later pass
// from the last position reads only what was appended or added.
func TestSourceJSONLDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "2026-01-01.jsonl"), filepath.Join(dir, "2026-01-02.jsonl"), filepath.Join(dir, "2026-01-03.jsonl")
	writeFile(t, b, `{"id": 4, "name": "d"}`+"\n"+`{"id": 5, "nested": {"n": 1.5, "list": [1, "x"]}}`+"\n\n"+`{"id": 6, "big": 9007199254740993}`+"\n"+`{"id": 7, "na`)
	// A file that is not the newest is complete: its last line counts
	// without a newline.
	writeFile(t, a, `{"id": 1}`+"\n"+`{"id": 2, "name": "b"}`+"\n"+`{"id": 3}`)
	writeFile(t, filepath.Join(dir, ".hidden.jsonl"), `{"id": 99}`+"\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}

	src := build(t, &file.Source{Path: dir, Format: file.JSONL})
	if src.Shape() != flows.Offset || !src.Resumes() {
		t.Errorf("shape %s, resumes %v; want an offset source that resumes", src.Shape(), src.Resumes())
	}
	want := []flows.Record{
		{"id": int64(1), "_file": a, "_offset": int64(0)},
		{"id": int64(2), "name": "b", "_file": a, "_offset": int64(10)},
		{"id": int64(3), "_file": a, "_offset": int64(33)},
		{"id": int64(4), "name": "d", "_file": b, "_offset": int64(0)},
		{"id": int64(5), "nested": map[string]any{"n": 1.5, "list": []any{int64(1), "x"}}, "_file": b, "_offset": int64(23)},
		{"id": int64(6), "big": int64(9007199254740993), "_file": b, "_offset": int64(74)},
	}
	for _, size := range []int{1, 2, 4, 100} {
		splits := plan(t, src, "", size)
		if diff := cmp.Diff(want, records(splits)); diff != "" {
			t.Errorf("size %d: records (-want +got):\n%s", size, diff)
		}
		for _, s := range splits {
			for _, r := range s.recs {
				if r["_file"] != fileOf(t, s.hi) {
					t.Errorf("size %d: range (%s, %s] holds a record of %s: ranges must not span files", size, s.lo, s.hi, r["_file"])
				}
			}
		}
		if want := map[int]int{1: 6, 2: 4, 4: 2, 100: 2}[size]; len(splits) != want {
			t.Errorf("size %d: %d ranges, want %d", size, len(splits), want)
		}
	}

	// The last line is completed, more lines and a new file arrive: the
	// next pass reads only those.
	end := last(plan(t, src, "", 3), "")
	appendFile(t, b, `me": "g"}`+"\n"+`{"id": 8}`+"\n")
	writeFile(t, c, `{"id": 9}`+"\n"+`{"id": 10`)
	splits := plan(t, src, end, 2)
	want = []flows.Record{
		{"id": int64(7), "name": "g", "_file": b, "_offset": int64(109)},
		{"id": int64(8), "_file": b, "_offset": int64(132)},
		{"id": int64(9), "_file": c, "_offset": int64(0)},
	}
	if diff := cmp.Diff(want, records(splits)); diff != "" {
		t.Errorf("second pass from %s: records (-want +got):\n%s", end, diff)
	}
	// Nothing complete after that: no range.
	end = last(splits, end)
	if s, err := src.Next(context.Background(), end, 10); err != nil || s.Hi != "" {
		t.Errorf("Next(%s) with only a half line left = %+v, %v; want no range", end, s, err)
	}
}

// TestSourceGlobAndSingleFile: a glob reads the files it matches; a path
// to one file reads that file, and nothing (no error) before it exists.
func TestSourceGlobAndSingleFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.jsonl"), `{"id": 1}`+"\n")
	writeFile(t, filepath.Join(dir, "b.txt"), `{"id": 2}`+"\n")
	writeFile(t, filepath.Join(dir, "c.jsonl"), `{"id": 3}`+"\n")
	got := records(plan(t, build(t, &file.Source{Path: filepath.Join(dir, "*.jsonl"), Format: file.JSONL, NoMetadata: true}), "", 10))
	if diff := cmp.Diff([]flows.Record{{"id": int64(1)}, {"id": int64(3)}}, got); diff != "" {
		t.Errorf("glob *.jsonl (-want +got):\n%s", diff)
	}

	one := filepath.Join(dir, "later.jsonl")
	src := build(t, &file.Source{Path: one, Format: file.JSONL, NoMetadata: true})
	if splits := plan(t, src, "", 10); len(splits) != 0 {
		t.Errorf("a missing file gives ranges %v", splits)
	}
	writeFile(t, one, `{"id": 4}`+"\n")
	if got := records(plan(t, src, "", 10)); !cmp.Equal(got, []flows.Record{{"id": int64(4)}}) {
		t.Errorf("single file read %v", got)
	}
}

// TestSourceCSV: the header names the fields; values are strings unless
// typed; quoted values may hold commas and newlines; a half-written record
// is read once complete.
func TestSourceCSV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "users.csv")
	writeFile(t, p, "id,name,score,active,at\n1,Ann,1.5,true,2026-05-01T08:00:00Z\n2,\"Doe, \"\"Jo\"\"\nSmith\",,false,\n3,Cy,2,")
	src := build(t, &file.Source{Path: p, Format: file.CSV, Types: map[string]string{"id": "int", "score": "float", "active": "bool", "at": "time"}})
	at := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	want := []flows.Record{
		{"id": int64(1), "name": "Ann", "score": 1.5, "active": true, "at": at, "_file": p, "_offset": int64(24)},
		{"id": int64(2), "name": "Doe, \"Jo\"\nSmith", "score": nil, "active": false, "at": nil, "_file": p, "_offset": int64(60)},
	}
	var splits []split
	for _, size := range []int{1, 5} {
		splits = plan(t, src, "", size)
		if diff := cmp.Diff(want, records(splits)); diff != "" {
			t.Errorf("size %d: records (-want +got):\n%s", size, diff)
		}
	}
	end := last(splits, "")
	// A quoted value with a newline, half written, is not planned either.
	appendFile(t, p, "true,\n4,\"line one\nline")
	got := records(plan(t, src, end, 5))
	if diff := cmp.Diff([]flows.Record{{"id": int64(3), "name": "Cy", "score": 2.0, "active": true, "at": nil, "_file": p, "_offset": int64(90)}}, got); diff != "" {
		t.Errorf("after the third row completed (-want +got):\n%s", diff)
	}
	appendFile(t, p, " two\",0,false,\n")
	got = records(plan(t, src, end, 5))
	if len(got) != 2 || got[1]["name"] != "line one\nline two" {
		t.Errorf("after the fourth row completed: %v", got)
	}

	// Untyped: every value a string; another delimiter; a byte order mark
	// before the header.
	semi := filepath.Join(dir, "semi.csv")
	writeFile(t, semi, "\ufeffa;b\n1;x,y\n")
	got = records(plan(t, build(t, &file.Source{Path: semi, Format: file.CSV, Comma: ";", NoMetadata: true}), "", 5))
	if diff := cmp.Diff([]flows.Record{{"a": "1", "b": "x,y"}}, got); diff != "" {
		t.Errorf("semicolon CSV (-want +got):\n%s", diff)
	}
}

// TestSourceShrunkFile: a file shorter than the position already read
// (truncated, or replaced by a shorter one) is an error naming the file,
// from Next and from Read, never a silent restart.
func TestSourceShrunkFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "log.jsonl")
	writeFile(t, p, `{"id": 1}`+"\n"+`{"id": 2}`+"\n"+`{"id": 3}`+"\n")
	src := build(t, &file.Source{Path: dir, Format: file.JSONL})
	splits := plan(t, src, "", 2)
	end := last(splits, "")
	writeFile(t, p, `{"id": 9}`+"\n")
	ctx := context.Background()
	if _, err := src.Next(ctx, end, 10); !errors.Is(err, file.ErrShrunk) || !strings.Contains(err.Error(), p) {
		t.Errorf("Next after the file shrank: %v; want ErrShrunk naming %s", err, p)
	}
	if _, err := src.Read(ctx, splits[0].lo, splits[0].hi); !errors.Is(err, file.ErrShrunk) || !strings.Contains(err.Error(), p) {
		t.Errorf("Read after the file shrank: %v; want ErrShrunk naming %s", err, p)
	}
}

// TestSourceBadInput: a line that is not a JSON object, or a CSV row of
// the wrong width or type, is an error naming the file and offset; the
// records before it are still planned and read.
func TestSourceBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, content string
		cfg           file.Source
		wantBefore    int
		want          string
	}{
		{"json array", `{"id": 1}` + "\n" + `[1, 2]` + "\n", file.Source{Format: file.JSONL}, 1, "offset 10: not a JSON object"},
		{"json null", `null` + "\n", file.Source{Format: file.JSONL}, 0, "offset 0: not a JSON object"},
		{"two values", `{"id": 1} {"id": 2}` + "\n", file.Source{Format: file.JSONL}, 0, "more than one JSON value"},
		{"csv width", "a,b\n1,2\n3\n", file.Source{Format: file.CSV}, 1, "offset 8: row has 1 fields, the header 2"},
		{"csv type", "a,b\nx,2\n", file.Source{Format: file.CSV, Types: map[string]string{"a": "int"}}, 0, "offset 4: column a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "in")
			writeFile(t, p, tc.content)
			tc.cfg.Path = p
			src := build(t, &tc.cfg)
			lo := ""
			if tc.wantBefore > 0 {
				s, err := src.Next(ctx, "", 10)
				if err != nil || s.Hi == "" {
					t.Fatalf("Next before the bad record = %+v, %v", s, err)
				}
				recs, err := src.Read(ctx, "", s.Hi)
				if err != nil || len(recs) != tc.wantBefore {
					t.Fatalf("Read before the bad record = %v, %v; want %d records", recs, err, tc.wantBefore)
				}
				lo = s.Hi
			}
			_, err := src.Next(ctx, lo, 10)
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Next at the bad record: %v; want an error naming %s saying %q", err, p, tc.want)
			}
		})
	}

	src := build(t, &file.Source{Path: t.TempDir(), Format: file.JSONL})
	for _, bad := range []string{"x", "[]", `["a"]`, `["a", -1]`, `[1, 2]`, `["", 0]`} {
		if _, err := src.Next(ctx, bad, 1); err == nil {
			t.Errorf("Next(%s): no error", bad)
		}
		if _, err := src.Read(ctx, "", bad); err == nil {
			t.Errorf("Read(, %s]: no error", bad)
		}
	}
	if _, err := src.Read(ctx, `["b", 0]`, `["a", 5]`); err == nil {
		t.Error("Read of a backwards range: no error")
	}
}

func FuzzPosition(f *testing.F) {
	for _, s := range []string{"", `["a", 0]`, `["dir/x.jsonl", 123]`, `[`, `["a"]`, `[1,2]`} {
		f.Add(s)
	}
	src, err := (&file.Source{Path: f.TempDir(), Format: file.JSONL}).Build(context.Background(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pos string) {
		// Any string is refused with an error or planned from; never a panic.
		_, _ = src.Next(context.Background(), pos, 3)
		_, _ = src.Read(context.Background(), pos, pos)
	})
}

// FuzzSource: whatever a file holds, planning never panics, and every
// range Next plans, Read reads without error, holding 1 to size records
// (the bytes Next parsed are the bytes Read parses).
func FuzzSource(f *testing.F) {
	for _, s := range []string{
		"{\"id\": 1}\n{\"id\": 2}\n", "{\"a\": [1, {\"b\": null}]}\n\n{\"x\"", "[1]\n{}\n", "a,b\n1,2\n\"x\ny\",3\n", "a,b\n\"1\n", "\ufeffa\n1\n2",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, content string, csv bool) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a"), content)
		writeFile(t, filepath.Join(dir, "b"), content)
		cfg := &file.Source{Path: dir, Format: file.JSONL}
		if csv {
			cfg.Format = file.CSV
		}
		src, err := cfg.Build(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		lo := ""
		for range 100 {
			s, err := src.Next(ctx, lo, 2)
			if err != nil || s.Hi == "" {
				return
			}
			recs, err := src.Read(ctx, lo, s.Hi)
			if err != nil || len(recs) < 1 || len(recs) > 2 {
				t.Fatalf("Read(%s, %s] = %d records, %v; want 1 or 2 and no error", lo, s.Hi, len(recs), err)
			}
			lo = s.Hi
		}
	})
}

// TestSourceRemovedFile: a file removed after it was read does not stop
// the flow — the next run goes on with the files after it; a range whose
// file is gone cannot be read. The last range of the newest file says it
// is the last.
func TestSourceRemovedFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeFile(t, a, `{"id": 1}`+"\n")
	src := build(t, &file.Source{Path: dir, Format: file.JSONL, NoMetadata: true})
	s, err := src.Next(ctx, "", 10)
	if err != nil || s.Hi == "" || !s.Last {
		t.Fatalf("Next over one complete file = %+v, %v; want its only range, marked last", s, err)
	}
	writeFile(t, b, `{"id": 2}`+"\n"+`{"id": 3}`+"\n")
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Read(ctx, "", s.Hi); err == nil || !strings.Contains(err.Error(), a) {
		t.Errorf("Read of a removed file's range: %v; want an error naming %s", err, a)
	}
	if got := records(plan(t, src, s.Hi, 10)); !cmp.Equal(got, []flows.Record{{"id": int64(2)}, {"id": int64(3)}}) {
		t.Errorf("from the end of the removed file: %v", got)
	}
	s, err = src.Next(ctx, s.Hi, 1)
	if err != nil || s.Last {
		t.Errorf("Next of one of two records = %+v, %v; want a range not marked last", s, err)
	}
}
