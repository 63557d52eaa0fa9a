package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// dialect is the SQL dialect of a database.
type dialect string

const (
	dialectPostgres dialect = "postgres"
	dialectMySQL    dialect = "mysql"
	dialectSQLite   dialect = "sqlite"
)

// dialectOf tells the dialect of a gorm connection.
func dialectOf(db *gorm.DB) (dialect, error) {
	if db.Dialector == nil {
		return "", errors.New("sqlstore: *gorm.DB has no dialector")
	}
	switch name := db.Dialector.Name(); name {
	case "postgres":
		return dialectPostgres, nil
	case "mysql":
		return dialectMySQL, nil
	case "sqlite":
		return dialectSQLite, nil
	default:
		return "", fmt.Errorf("sqlstore: unsupported gorm dialect %q: want postgres, mysql or sqlite", name)
	}
}

// Transaction retries.
const (
	txAttempts = 6
	txBackoff  = 5 * time.Millisecond
)

// inTx runs fn in a transaction of its own, retrying the whole transaction
// when the database aborted it to break a deadlock or a serialization
// conflict. fn must therefore compute everything it returns afresh.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.retryTx(ctx, prioFinish, true, nil, fn)
}

// inBookkeepingTx is inTx for a change that may be lost in a crash of the
// database without losing or repeating work: enqueueing, claiming and
// planning batches, and extending claims. A lost enqueue leaves the batch
// pending (the scheduler enqueues it again under the same task id), a lost
// claim leaves it claimable (its worker's checkpoint is then refused and
// the batch runs again), a lost planning step is planned again. On
// PostgreSQL such a transaction commits without waiting for its WAL to reach
// the disk (synchronous_commit off): the next durable commit, at the latest
// a checkpoint's, flushes it in order, so nothing durable ever depends on
// one that was lost. The per-batch bookkeeping then costs no disk flush of
// its own; checkpoints, failures and every change people make (pause,
// cancel, retry, new runs) still wait for theirs.
func (s *Store) inBookkeepingTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.retryTx(ctx, prioFinish, false, nil, fn)
}

// inClaimTx is inTx for an operation that starts new work. On SQLite it
// queues for the writer behind the work in flight, and once its turn has
// come runs recheck, a read-only check that refuses only what fn would
// refuse, so an operation that has meanwhile become certain to fail ends
// without taking the database's write lock.
// Claims are bookkeeping (see inBookkeepingTx).
func (s *Store) inClaimTx(ctx context.Context, recheck func(db *gorm.DB) error, fn func(tx *gorm.DB) error) error {
	return s.retryTx(ctx, prioStart, false, recheck, fn)
}

func (s *Store) retryTx(ctx context.Context, prio int, durable bool, recheck func(db *gorm.DB) error, fn func(tx *gorm.DB) error) error {
	for attempt := 1; ; attempt++ {
		err := s.txOnce(ctx, prio, durable, recheck, fn)
		if err == nil || attempt == txAttempts || !retryable(err) {
			return err
		}
		// Full jitter over an exponential window, so the losers of a
		// deadlock do not collide again in lockstep.
		window := txBackoff << (attempt - 1)
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(window))) + time.Millisecond):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}

func (s *Store) txOnce(ctx context.Context, prio int, durable bool, recheck func(db *gorm.DB) error, fn func(tx *gorm.DB) error) error {
	if s.writeQueue != nil {
		if err := s.writeQueue.acquire(ctx, prio); err != nil {
			return err
		}
		defer s.writeQueue.release()
		if recheck != nil {
			if err := recheck(s.wdb.WithContext(ctx)); err != nil {
				return err
			}
		}
	}
	var opts []*sql.TxOptions
	if s.dialect == dialectMySQL {
		// READ COMMITTED takes no gap locks: a locking read locks exactly the
		// rows it returns, like PostgreSQL's default.
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	db := s.wdb
	if !durable && s.adb != nil {
		db = s.adb
	} else if !durable && s.dialect == dialectPostgres {
		inner := fn
		fn = func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL synchronous_commit TO OFF").Error; err != nil {
				return err
			}
			return inner(tx)
		}
	}
	return db.WithContext(ctx).Transaction(fn, opts...)
}

// retryable reports whether err is a transaction the database aborted for
// another one's sake: a deadlock, a serialization failure, a lock wait
// timeout, or SQLite's busy or locked database.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1213 || myErr.Number == 1205
	}
	var liteErr *sqlitedriver.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code() & 0xff // primary result code
		return code == 5 || code == 6 // SQLITE_BUSY, SQLITE_LOCKED
	}
	return false
}

// forUpdate makes a select lock the rows it reads until the transaction
// ends. SQLite has no row locks: its IMMEDIATE transactions hold the
// database's write lock from their start.
func (s *Store) forUpdate(tx *gorm.DB) *gorm.DB {
	if s.dialect == dialectSQLite {
		return tx
	}
	return tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
}
