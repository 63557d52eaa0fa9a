package keyset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Count counts the records of q exactly if it can within timeout; otherwise it
// returns the planner statistics' row count of table (an estimate for the
// whole table, not the scope) with estimated true.
func Count(ctx context.Context, q *gorm.DB, table string, timeout time.Duration) (n int64, estimated bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = q.WithContext(cctx).Session(&gorm.Session{}).Count(&n).Error
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
