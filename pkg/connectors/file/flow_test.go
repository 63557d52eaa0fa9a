package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/connectors/file"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// postgres returns a throwaway PostgreSQL database.
func postgres(t *testing.T) *gorm.DB {
	t.Helper()
	db, err := sqlstore.OpenDB(context.Background(), testenv.PostgresURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

func exec(t *testing.T, db *gorm.DB, sql string, args ...any) {
	t.Helper()
	if err := db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// runFlow does what the scheduler and workers do for one run of job: it
// plans from the flow's watermark (at most MaxBatches batches for an
// offset source), processes every batch as batch seq of run, and returns
// the totals and the new watermark (the last planned position).
func runFlow(t *testing.T, job engine.Job, db *gorm.DB, run int64, watermark string, size int) (store.Result, string) {
	t.Helper()
	ctx := context.Background()
	p, err := job.Open(ctx, engine.Env{DB: db}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bp := p.(engine.BatchProcessor)
	limit := 0
	if m, ok := p.(interface{ MaxBatches() int }); ok {
		limit = m.MaxBatches()
	}
	var total store.Result
	lo := p.Start(watermark)
	for seq := int64(1); limit == 0 || seq <= int64(limit); seq++ {
		hi, _, ok, err := p.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("run %d: Next(%q): %v", run, lo, err)
		}
		if !ok {
			break
		}
		res, err := bp.ProcessBatch(ctx, nil, store.Batch{RunID: run, Seq: seq, Lo: lo, Hi: hi})
		if err != nil {
			t.Fatalf("run %d: batch %d (%q, %q]: %v", run, seq, lo, hi, err)
		}
		total.RowsRead += res.RowsRead
		total.RowsWritten += res.RowsWritten
		lo = hi
	}
	return total, lo
}

// jsonlIDs reads the "id" of every record of the JSONL files in dir, and
// fails on anything in dir that is not a final JSONL file.
func jsonlIDs(t *testing.T, dir string) []int64 {
	t.Helper()
	src := build(t, &file.Source{Path: dir, Format: file.JSONL})
	var ids []int64
	for _, r := range records(plan(t, src, "", 1000)) {
		ids = append(ids, r["id"].(int64))
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	listDir(t, dir)
	return ids
}

// TestFlowTableToJSONL: a PostgreSQL table read by the sql source lands in
// JSONL files, one set per batch; a batch delivered twice (a retry after a
// crash between write and checkpoint) leaves every row in the files once.
func TestFlowTableToJSONL(t *testing.T) {
	t.Parallel()
	db := postgres(t)
	exec(t, db, "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, total NUMERIC(10,2) NOT NULL)")
	var want []int64
	for i := 1; i <= 57; i++ {
		exec(t, db, "INSERT INTO orders VALUES (?, ?, ?)", i, fmt.Sprintf("c%d", i%7), float64(i)+0.5)
		want = append(want, int64(i))
	}
	dir := filepath.Join(t.TempDir(), "export")
	job, err := flows.New(flows.Flow{
		Name:   "orders_export",
		Source: &sqlconn.Source{Table: "orders"},
		Sink:   &file.Sink{Dir: dir, Format: file.JSONL, MaxRecords: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := runFlow(t, job, db, 1, "", 10)
	if res.RowsRead != 57 || res.RowsWritten != 57 {
		t.Errorf("run totals %+v, want 57 read and written", res)
	}
	if diff := cmp.Diff(want, jsonlIDs(t, dir)); diff != "" {
		t.Errorf("ids in the files (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(dir)
	// 6 batches: 5 of 10 rows (3 parts each) and one of 7 (2 parts).
	if n := len(entries) - 1; n != 17 {
		t.Errorf("%d files, want 17", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "orders_export-000001-000006-0001.jsonl")); err != nil {
		t.Errorf("last batch's second part: %v", err)
	}

	// Every batch delivered again: the same files, each row once.
	runFlow(t, job, db, 1, "", 10)
	if diff := cmp.Diff(want, jsonlIDs(t, dir)); diff != "" {
		t.Errorf("after redelivery, ids in the files (-want +got):\n%s", diff)
	}
}

// TestFlowJSONLToTable: a directory of JSONL files flows into a PostgreSQL
// table by upsert on (_file, _offset); the files grow and a new one
// appears between runs, and the second run reads only the new records; a
// run is bounded by the flow's MaxBatchesPerRun.
func TestFlowJSONLToTable(t *testing.T) {
	t.Parallel()
	db := postgres(t)
	exec(t, db, "CREATE TABLE events (_file TEXT NOT NULL, _offset BIGINT NOT NULL, id BIGINT NOT NULL, kind TEXT, PRIMARY KEY (_file, _offset))")
	dir := t.TempDir()
	line := func(id int) string { return fmt.Sprintf(`{"id": %d, "kind": "k%d"}`+"\n", id, id%3) }
	var content strings.Builder
	for i := 1; i <= 25; i++ {
		content.WriteString(line(i))
	}
	a := filepath.Join(dir, "events-0001.jsonl")
	writeFile(t, a, content.String()+`{"id": 26, "ki`)

	job, err := flows.New(flows.Flow{
		Name:             "events_load",
		Source:           &file.Source{Path: filepath.Join(dir, "*.jsonl"), Format: file.JSONL},
		Transforms:       []flows.Transform{flows.Filter("no_kind_2", func(r flows.Record) bool { return r["kind"] != "k2" })},
		Sink:             &sqlconn.Sink{Table: "events", Mode: sqlconn.Upsert, Key: []string{"_file", "_offset"}},
		MaxBatchesPerRun: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func() []int64 {
		var out []int64
		if err := db.Table("events").Order("id").Pluck("id", &out).Error; err != nil {
			t.Fatal(err)
		}
		return out
	}
	keep := func(from, to int) []int64 {
		var out []int64
		for i := from; i <= to; i++ {
			if i%3 != 2 {
				out = append(out, int64(i))
			}
		}
		return out
	}

	// Run 1 plans two batches of 10: records 1-20.
	res, wm := runFlow(t, job, db, 1, "", 10)
	if res.RowsRead != 20 {
		t.Errorf("run 1 read %d records, want 20 (2 batches of 10)", res.RowsRead)
	}
	if diff := cmp.Diff(keep(1, 20), ids()); diff != "" {
		t.Errorf("after run 1 (-want +got):\n%s", diff)
	}
	// Run 2: records 21-25; the half line is not read.
	res, wm = runFlow(t, job, db, 2, wm, 10)
	if res.RowsRead != 5 {
		t.Errorf("run 2 read %d records, want 5", res.RowsRead)
	}
	// The line completes, more are appended and a new file appears: run 3
	// reads those alone.
	appendFile(t, a, `nd": "k2"}`+"\n"+line(27))
	writeFile(t, filepath.Join(dir, "events-0002.jsonl"), line(28)+line(29))
	res, wm = runFlow(t, job, db, 3, wm, 10)
	if res.RowsRead != 4 {
		t.Errorf("run 3 read %d records, want 4 (ids 26-29)", res.RowsRead)
	}
	if diff := cmp.Diff(keep(1, 29), ids()); diff != "" {
		t.Errorf("after run 3 (-want +got):\n%s", diff)
	}
	// Nothing new: a run reads nothing. Rerunning everything from the
	// start upserts the same rows.
	if res, _ = runFlow(t, job, db, 4, wm, 10); res.RowsRead != 0 {
		t.Errorf("run 4 read %d records, want 0", res.RowsRead)
	}
	for wm, run := "", int64(5); ; run++ {
		var res store.Result
		res, wm = runFlow(t, job, db, run, wm, 10)
		if res.RowsRead == 0 {
			break
		}
	}
	var n int64
	db.Table("events").Count(&n)
	if diff := cmp.Diff(keep(1, 29), ids()); diff != "" || n != int64(len(keep(1, 29))) {
		t.Errorf("after reading everything again: %d rows (-want +got):\n%s", n, diff)
	}
}
