package backfills_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// BenchRow is bench/'s table bench_rows, here records_bench.
type BenchRow struct {
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Val       int64
	Pad       string
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (BenchRow) TableName() string { return "records_bench" }

const (
	benchBatch  = 1000
	benchRanges = 50
)

// BenchmarkBatch measures one batch of 1000 records on PostgreSQL, in a
// transaction rolled back after each batch (the commit is the same for
// every form): dripflow's forms of the in-place backfill val = val + 1 and
// hand-written pgx statements doing the same work. stmts/op counts the
// statements dripflow ran through gorm per batch.
//
//	go test -run '^$' -bench BenchmarkBatch -benchmem ./pkg/backfills/
func BenchmarkBatch(b *testing.B) {
	ctx := context.Background()
	db, url, stmts := benchDB(b)
	bound := func(k int) string {
		s, _ := keyset.Encode(keyset.Key{int64(k * benchBatch)})
		return s
	}

	dripflow := func(name string, def backfills.Definition[BenchRow, struct{}], fast bool) {
		b.Run(name, func(b *testing.B) {
			defer backfills.SetFastLoad(fast)()
			p := benchPipeline(b, db, def)
			b.ReportAllocs()
			stmts.Store(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % benchRanges
				tx := db.Begin()
				res, err := p.Process(ctx, tx, bound(k), bound(k+1))
				tx.Rollback()
				if err != nil || res.RowsRead != benchBatch {
					b.Fatalf("batch %d: %+v, %v", k, res, err)
				}
			}
			b.ReportMetric(float64(stmts.Load())/float64(b.N), "stmts/op")
		})
	}
	dripflow("range", benchBumpRange, true)
	dripflow("load/gorm", benchLoadOnly, false)
	dripflow("load/scan", benchLoadOnly, true)
	dripflow("records-in/gorm", benchBumpIn, false)
	dripflow("records-in/scan", benchBumpIn, true)
	dripflow("records-save", benchBumpSave, true)

	// Hand-written with pgx, one connection: what the loop runs, and the
	// same rows loaded into structs.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, h := range handForms(ctx) {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k := int64(i % benchRanges)
				if err := inTx(ctx, conn, k, h.fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatchInterleaved runs one batch of every form in turn, b.N
// rounds, and reports each form's median batch time (ms): on a shared
// machine a disturbance then hits every form alike, where BenchmarkBatch
// runs one form after the other.
//
//	go test -run '^$' -bench BenchmarkBatchInterleaved -benchtime 200x ./pkg/backfills/
func BenchmarkBatchInterleaved(b *testing.B) {
	ctx := context.Background()
	db, url, _ := benchDB(b)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	type form struct {
		name string
		run  func(k int) error
	}
	var forms []form
	for _, d := range []struct {
		name string
		def  backfills.Definition[BenchRow, struct{}]
		fast bool
	}{
		{"range", benchBumpRange, true},
		{"load-gorm", benchLoadOnly, false},
		{"load-scan", benchLoadOnly, true},
		{"in-gorm", benchBumpIn, false},
		{"in-scan", benchBumpIn, true},
		{"save", benchBumpSave, true},
	} {
		p := benchPipeline(b, db, d.def)
		forms = append(forms, form{d.name, func(k int) error {
			defer backfills.SetFastLoad(d.fast)()
			lo, _ := keyset.Encode(keyset.Key{int64(k * benchBatch)})
			hi, _ := keyset.Encode(keyset.Key{int64((k + 1) * benchBatch)})
			tx := db.Begin()
			defer tx.Rollback()
			res, err := p.Process(ctx, tx, lo, hi)
			if err == nil && res.RowsRead != benchBatch {
				err = fmt.Errorf("read %d rows", res.RowsRead)
			}
			return err
		}})
	}
	for _, h := range handForms(ctx) {
		forms = append(forms, form{h.name, func(k int) error { return inTx(ctx, conn, int64(k), h.fn) }})
	}
	times := make([][]time.Duration, len(forms))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, f := range forms {
			start := time.Now()
			if err := f.run(i % benchRanges); err != nil {
				b.Fatalf("%s: %v", f.name, err)
			}
			times[j] = append(times[j], time.Since(start))
		}
	}
	b.StopTimer()
	for j, f := range forms {
		slices.Sort(times[j])
		b.ReportMetric(float64(times[j][len(times[j])/2])/1e6, f.name+"-ms")
	}
}

// benchDB returns a PostgreSQL database holding records_bench with 50,000
// rows, its URL, and a counter of the statements gorm runs on it.
func benchDB(b *testing.B) (*gorm.DB, string, *atomic.Int64) {
	ctx := context.Background()
	url := testenv.PostgresURL(b)
	db, err := sqlstore.OpenDB(ctx, url, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	for _, stmt := range []string{
		"CREATE TABLE records_bench (id bigint PRIMARY KEY, val bigint NOT NULL, pad text NOT NULL, updated_at timestamptz NOT NULL)",
		"INSERT INTO records_bench SELECT g, 0, md5(g::text), now() - interval '1 day' FROM generate_series(1, 50000) AS g",
		"VACUUM (FREEZE, ANALYZE) records_bench",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			b.Fatal(err)
		}
	}
	stmts := new(atomic.Int64)
	count := func(*gorm.DB) { stmts.Add(1) }
	cb := db.Callback()
	for name, err := range map[string]error{
		"query": cb.Query().After("gorm:query").Register("bench:count", count),
		"row":   cb.Row().After("gorm:row").Register("bench:count", count),
		"raw":   cb.Raw().After("gorm:raw").Register("bench:count", count),
		"upd":   cb.Update().After("gorm:update").Register("bench:count", count),
	} {
		if err != nil {
			b.Fatal(name, err)
		}
	}
	return db, url, stmts
}

func benchPipeline(b *testing.B, db *gorm.DB, def backfills.Definition[BenchRow, struct{}]) engine.Pipeline {
	j, err := backfills.New(def)
	if err != nil {
		b.Fatal(err)
	}
	p, err := j.Open(context.Background(), engine.Env{DB: db}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// The forms of the in-place backfill val = val + 1 over a batch.
var (
	benchBumpRange = backfills.Definition[BenchRow, struct{}]{Name: "bump",
		ProcessRange: func(_ context.Context, r *backfills.Range[BenchRow, struct{}]) error {
			return r.Updates(map[string]any{"val": gorm.Expr("val + 1")})
		}}
	benchLoadOnly = backfills.Definition[BenchRow, struct{}]{Name: "load",
		ProcessBatch: func(context.Context, *backfills.Batch[BenchRow, struct{}]) error { return nil }}
	// bench/'s bench_bump_records before Save: load, then one UPDATE …
	// WHERE id IN (keys).
	benchBumpIn = backfills.Definition[BenchRow, struct{}]{Name: "bump_in",
		ProcessBatch: func(_ context.Context, b *backfills.Batch[BenchRow, struct{}]) error {
			return b.DB.Model(&BenchRow{}).Where("id IN ?", b.Keys()).Updates(map[string]any{"val": gorm.Expr("val + 1")}).Error
		}}
	// Change each record in Go and write them back with Save.
	benchBumpSave = backfills.Definition[BenchRow, struct{}]{Name: "bump_save",
		ProcessBatch: func(_ context.Context, b *backfills.Batch[BenchRow, struct{}]) error {
			for i := range b.Records {
				b.Records[i].Val++
			}
			return b.Save("val")
		}}
)

type handForm struct {
	name string
	fn   func(tx pgx.Tx, lo, hi int64) error
}

// handForms are hand-written pgx forms of the same batch.
func handForms(ctx context.Context) []handForm {
	update := func(tx pgx.Tx, lo, hi int64) error {
		_, err := tx.Exec(ctx, "UPDATE records_bench SET val = val + 1, updated_at = now() WHERE id > $1 AND id <= $2", lo, hi)
		return err
	}
	load := func(tx pgx.Tx, lo, hi int64) error {
		rows, err := tx.Query(ctx, "SELECT id, val, pad, updated_at FROM records_bench WHERE id > $1 AND id <= $2 ORDER BY id", lo, hi)
		if err != nil {
			return err
		}
		out := make([]BenchRow, 0, benchBatch)
		for rows.Next() {
			var r BenchRow
			if err := rows.Scan(&r.ID, &r.Val, &r.Pad, &r.UpdatedAt); err != nil {
				return err
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) != benchBatch {
			return fmt.Errorf("loaded %d rows", len(out))
		}
		return nil
	}
	return []handForm{
		{"pgx-update", update},
		{"pgx-load", load},
		{"pgx-load+update", func(tx pgx.Tx, lo, hi int64) error {
			if err := load(tx, lo, hi); err != nil {
				return err
			}
			return update(tx, lo, hi)
		}},
	}
}

// inTx runs fn over batch k in a transaction rolled back after it.
func inTx(ctx context.Context, conn *pgx.Conn, k int64, fn func(tx pgx.Tx, lo, hi int64) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	return fn(tx, k*benchBatch, (k+1)*benchBatch)
}
