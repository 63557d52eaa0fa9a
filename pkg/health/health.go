// Package health evaluates a run's database health checks
// (store.HealthCheck): replication lag, an autovacuum on a table, sessions
// waiting for locks, and a definition's own SQL query. The scheduler asks
// before it enqueues a run's next batches and holds the run while a check
// fails.
//
// Every check runs in a read-only transaction (PostgreSQL and MySQL/MariaDB:
// START TRANSACTION READ ONLY; SQLite: PRAGMA query_only) with a short
// statement timeout (PostgreSQL: SET LOCAL statement_timeout; MariaDB: SET
// STATEMENT max_statement_time; MySQL and SQLite: the context's deadline),
// so a check can neither write nor hang the scheduler.
//
// What each kind reads:
//
//	replication_lag  PostgreSQL primary: the largest replay_lag in
//	                 pg_stat_replication (0 without standbys); standby:
//	                 now() - pg_last_xact_replay_timestamp(), 0 when it has
//	                 replayed all it received. MySQL/MariaDB:
//	                 Seconds_Behind_Master/Source of SHOW REPLICA (SLAVE)
//	                 STATUS, the largest over the channels (none: 0; NULL,
//	                 replication stopped: an error).
//	autovacuum       PostgreSQL: pg_stat_progress_vacuum joined to
//	                 pg_stat_activity, an autovacuum worker on the table.
//	lock_waits       PostgreSQL: sessions of the database with
//	                 wait_event_type 'Lock'. MySQL/MariaDB: the database's
//	                 InnoDB transactions in LOCK WAIT plus its sessions
//	                 waiting for a metadata or table lock.
//	sql              the query's one boolean (true, 1, 't': healthy).
package health

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/sqlres"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// DefaultTimeout bounds one check: its statements and the wait for a
// connection.
const DefaultTimeout = 2 * time.Second

// ErrUnsupported means a check's kind cannot run on its database's dialect
// (autovacuum outside PostgreSQL, the built-in checks on SQLite). Waiting
// does not help: the scheduler fails the run saying so.
var ErrUnsupported = errors.New("health check not supported here")

// Opener returns the database of a connection name ("" or "default": the
// application database).
type Opener func(ctx context.Context, connection string) (*gorm.DB, error)

// Checker evaluates health checks.
type Checker struct {
	// Open returns a check's database.
	Open Opener
	// Timeout bounds one check; default DefaultTimeout.
	Timeout time.Duration

	mariadb sync.Map // *sql.DB → bool: a MySQL-protocol server is MariaDB
}

// Result is what one check found.
type Result struct {
	Check store.HealthCheck
	// Healthy says the check passed; a check that could not be evaluated
	// (Err set) is not healthy.
	Healthy bool
	// Value is what the check measured: lag in seconds, waiting sessions,
	// autovacuums running on the table, 1 or 0 for a query.
	Value float64
	// Reason says, for a failing check, why: "replication lag 12.3 s > 5 s".
	Reason string
	// Err is why the check could not be evaluated.
	Err error
}

// Check evaluates c.
func (k *Checker) Check(ctx context.Context, c store.HealthCheck) Result {
	v, err := k.measure(ctx, c)
	if err != nil {
		return Result{Check: c, Err: err, Reason: fmt.Sprintf("%s check failed: %v", c.Label(), err)}
	}
	ok, reason := Decide(c, v)
	return Result{Check: c, Healthy: ok, Value: v, Reason: reason}
}

// Decide says whether a check that measured v passes, and if not why.
func Decide(c store.HealthCheck, v float64) (healthy bool, reason string) {
	switch c.Kind {
	case store.HealthReplicationLag:
		if v > c.MaxSeconds {
			return false, fmt.Sprintf("replication lag %s s > %s s", strconv.FormatFloat(v, 'f', 1, 64), num(c.MaxSeconds)) + on(c)
		}
	case store.HealthAutovacuum:
		if v > 0 {
			return false, "autovacuum running on " + c.Table + on(c)
		}
	case store.HealthLockWaits:
		if v > float64(c.Max) {
			return false, fmt.Sprintf("lock waits %s > %d", num(v), c.Max) + on(c)
		}
	case store.HealthSQL:
		if v == 0 {
			if c.Name != "" {
				return false, "sql check " + c.Name + " returned false" + on(c)
			}
			return false, "sql check returned false" + on(c)
		}
	}
	return true, ""
}

// on names a check's connection when it is not the application database.
func on(c store.HealthCheck) string {
	if c.Connection == "" || c.Connection == engine.DefaultConnection {
		return ""
	}
	return " on " + c.Connection
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// measure runs c's query and returns what it measured.
func (k *Checker) measure(ctx context.Context, c store.HealthCheck) (float64, error) {
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db, err := k.Open(ctx, c.Connection)
	if err != nil {
		return 0, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return 0, err
	}
	dialect := db.Dialector.Name()
	if err := supported(c, dialect); err != nil {
		return 0, err
	}
	maria := false
	if dialect == "mysql" {
		if maria, err = k.isMariaDB(ctx, sqlDB); err != nil {
			return 0, err
		}
	}
	tx, err := sqlDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("begin a read-only transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
	r := &reader{tx: tx, dialect: dialect, maria: maria, timeout: timeout}
	if err := r.prepare(ctx); err != nil {
		return 0, err
	}
	defer r.finish()
	switch c.Kind {
	case store.HealthReplicationLag:
		return r.replicationLag(ctx)
	case store.HealthAutovacuum:
		return r.autovacuum(ctx, c.Table)
	case store.HealthLockWaits:
		return r.lockWaits(ctx)
	case store.HealthSQL:
		return r.query(ctx, c.Query)
	}
	return 0, fmt.Errorf("unknown health check kind %q", c.Kind)
}

// supported refuses a kind its dialect has no answer for.
func supported(c store.HealthCheck, dialect string) error {
	conn := c.Connection
	if conn == "" {
		conn = engine.DefaultConnection
	}
	switch {
	case c.Kind == store.HealthSQL:
		return nil
	case dialect == "sqlite":
		return fmt.Errorf("%w: %s checks need PostgreSQL or MySQL/MariaDB; connection %s is SQLite (only sql checks run there)", ErrUnsupported, c.Kind, conn)
	case c.Kind == store.HealthAutovacuum && dialect != "postgres":
		return fmt.Errorf("%w: autovacuum checks need PostgreSQL; connection %s is %s", ErrUnsupported, conn, dialectName(dialect))
	case dialect != "postgres" && dialect != "mysql":
		return fmt.Errorf("%w: %s checks need PostgreSQL or MySQL/MariaDB; connection %s is %s", ErrUnsupported, c.Kind, conn, dialect)
	}
	return nil
}

func dialectName(d string) string {
	if d == "mysql" {
		return "MySQL/MariaDB"
	}
	return d
}

// isMariaDB asks the server once per pool.
func (k *Checker) isMariaDB(ctx context.Context, db *sql.DB) (bool, error) {
	if v, ok := k.mariadb.Load(db); ok {
		return v.(bool), nil
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return false, fmt.Errorf("read server version: %w", err)
	}
	maria := strings.Contains(strings.ToLower(version), "mariadb")
	k.mariadb.Store(db, maria)
	return maria, nil
}

// ResourcesOpener opens checks' databases from a process's resources: the
// application database, or a named connection (DRIPFLOW_CONNECTIONS),
// sharing the pool the SQL connectors use for that name.
func ResourcesOpener(res *engine.Resources) Opener {
	return func(ctx context.Context, name string) (*gorm.DB, error) {
		return sqlres.Open(ctx, res, name)
	}
}
