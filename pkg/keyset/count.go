package keyset

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

type snapshotHookKey struct{}

// OnSnapshot returns a context under which Count calls fn once it has fixed
// the instant it counts at — before it starts counting — or once it knows it
// cannot. A scheduler counting a run's records in the background waits for
// that before the run's first batch starts, so that the total is the scope's
// size when the run started, whatever the batches then change.
func OnSnapshot(ctx context.Context, fn func()) context.Context {
	var once sync.Once
	return context.WithValue(ctx, snapshotHookKey{}, func() { once.Do(fn) })
}

func snapshotTaken(ctx context.Context) {
	if fn, ok := ctx.Value(snapshotHookKey{}).(func()); ok {
		fn()
	}
}

// Count counts the records of q exactly if it can within timeout; otherwise it
// returns the planner statistics' row count of table (an estimate for the
// whole table, not the scope) with estimated true.
//
// On PostgreSQL and MySQL it counts in a read-only REPEATABLE READ
// transaction whose snapshot it takes first (see OnSnapshot); SQLite, whose
// transactions here begin IMMEDIATE and would hold up every writer, counts
// in one statement.
func Count(ctx context.Context, q *gorm.DB, table string, timeout time.Duration) (n int64, estimated bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch q.Dialector.Name() {
	case "postgres", "mysql":
		err = q.Session(&gorm.Session{NewDB: true}).WithContext(cctx).Transaction(func(tx *gorm.DB) error {
			// The first read fixes the snapshot (MySQL's must read a table).
			var one []int
			if err := tx.Raw("SELECT 1 FROM " + tx.Statement.Quote(table) + " LIMIT 1").Scan(&one).Error; err != nil {
				return err
			}
			snapshotTaken(ctx)
			// q's own query, on the transaction's connection.
			cq := q.WithContext(cctx)
			cq.Statement.ConnPool = tx.Statement.ConnPool
			return cq.Count(&n).Error
		}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	default:
		snapshotTaken(ctx)
		err = q.WithContext(cctx).Session(&gorm.Session{}).Count(&n).Error
	}
	snapshotTaken(ctx) // in case the transaction failed before
	if err == nil {
		return n, false, nil
	}
	if ctx.Err() != nil || !(errors.Is(cctx.Err(), context.DeadlineExceeded)) {
		return 0, false, fmt.Errorf("count records: %w", err)
	}
	db := q.Session(&gorm.Session{NewDB: true}).WithContext(ctx)
	switch db.Dialector.Name() {
	case "postgres":
		// reltuples is -1 for a table never vacuumed or analyzed.
		err = db.Raw("SELECT GREATEST(COALESCE(reltuples, 0), 0)::bigint FROM pg_class WHERE oid = to_regclass(?)", table).Scan(&n).Error
	case "mysql":
		err = db.Raw("SELECT COALESCE(table_rows, 0) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n).Error
	default:
		return 0, false, fmt.Errorf("count records: %w", err)
	}
	if err != nil {
		return 0, false, fmt.Errorf("estimate records of %s: %w", table, err)
	}
	return n, true, nil
}
