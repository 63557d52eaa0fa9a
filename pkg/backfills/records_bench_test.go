package backfills_test

import (
	"context"
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
	url := testenv.PostgresURL(b)
	db, err := sqlstore.OpenDB(ctx, url, 2)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	for _, stmt := range []string{
		"CREATE TABLE records_bench (id bigint PRIMARY KEY, val bigint NOT NULL, pad text NOT NULL, updated_at timestamptz NOT NULL)",
		"INSERT INTO records_bench SELECT g, 0, md5(g::text), now() - interval '1 day' FROM generate_series(1, 50000) AS g",
		"VACUUM (FREEZE, ANALYZE) records_bench",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			b.Fatal(err)
		}
	}
	var stmts atomic.Int64
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
	bound := func(k int) string {
		s, _ := keyset.Encode(keyset.Key{int64(k * benchBatch)})
		return s
	}

	dripflow := func(name string, def backfills.Definition[BenchRow, struct{}], fast bool) {
		b.Run(name, func(b *testing.B) {
			defer backfills.SetFastLoad(fast)()
			j, err := backfills.New(def)
			if err != nil {
				b.Fatal(err)
			}
			p, err := j.Open(ctx, engine.Env{DB: db}, nil)
			if err != nil {
				b.Fatal(err)
			}
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
	bumpRange := backfills.Definition[BenchRow, struct{}]{Name: "bump",
		ProcessRange: func(_ context.Context, r *backfills.Range[BenchRow, struct{}]) error {
			return r.Updates(map[string]any{"val": gorm.Expr("val + 1")})
		}}
	loadOnly := backfills.Definition[BenchRow, struct{}]{Name: "load",
		ProcessBatch: func(context.Context, *backfills.Batch[BenchRow, struct{}]) error { return nil }}
	// bench/'s bench_bump_records: load, then one UPDATE … WHERE id IN (keys).
	bumpIn := backfills.Definition[BenchRow, struct{}]{Name: "bump_in",
		ProcessBatch: func(_ context.Context, b *backfills.Batch[BenchRow, struct{}]) error {
			return b.DB.Model(&BenchRow{}).Where("id IN ?", b.Keys()).Updates(map[string]any{"val": gorm.Expr("val + 1")}).Error
		}}
	// Change each record in Go and write them back with Save.
	bumpSave := backfills.Definition[BenchRow, struct{}]{Name: "bump_save",
		ProcessBatch: func(_ context.Context, b *backfills.Batch[BenchRow, struct{}]) error {
			for i := range b.Records {
				b.Records[i].Val++
			}
			return b.Save("val")
		}}
	dripflow("range", bumpRange, true)
	dripflow("load/gorm", loadOnly, false)
	dripflow("load/scan", loadOnly, true)
	dripflow("records-in/gorm", bumpIn, false)
	dripflow("records-in/scan", bumpIn, true)
	dripflow("records-save", bumpSave, true)

	// Hand-written with pgx, one connection: what the loop runs, and the
	// same rows loaded into structs.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	hand := func(name string, fn func(tx pgx.Tx, lo, hi int64) error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k := int64(i % benchRanges)
				tx, err := conn.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				err = fn(tx, k*benchBatch, (k+1)*benchBatch)
				tx.Rollback(ctx)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	hand("pgx/update", func(tx pgx.Tx, lo, hi int64) error {
		_, err := tx.Exec(ctx, "UPDATE records_bench SET val = val + 1, updated_at = now() WHERE id > $1 AND id <= $2", lo, hi)
		return err
	})
	load := func(tx pgx.Tx, lo, hi int64) ([]BenchRow, error) {
		rows, err := tx.Query(ctx, "SELECT id, val, pad, updated_at FROM records_bench WHERE id > $1 AND id <= $2 ORDER BY id", lo, hi)
		if err != nil {
			return nil, err
		}
		out := make([]BenchRow, 0, benchBatch)
		for rows.Next() {
			var r BenchRow
			if err := rows.Scan(&r.ID, &r.Val, &r.Pad, &r.UpdatedAt); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	hand("pgx/load", func(tx pgx.Tx, lo, hi int64) error {
		rows, err := load(tx, lo, hi)
		if err == nil && len(rows) != benchBatch {
			b.Fatalf("loaded %d rows", len(rows))
		}
		return err
	})
	hand("pgx/load+update", func(tx pgx.Tx, lo, hi int64) error {
		if _, err := load(tx, lo, hi); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE records_bench SET val = val + 1, updated_at = now() WHERE id > $1 AND id <= $2", lo, hi)
		return err
	})
}
