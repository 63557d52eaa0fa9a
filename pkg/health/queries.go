package health

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// reader runs a check's statements in its read-only transaction.
type reader struct {
	tx      *sql.Tx
	dialect string // gorm dialector name: postgres, mysql, sqlite
	maria   bool
	timeout time.Duration
	// sqliteQueryOnly is set while PRAGMA query_only is on, to turn it off
	// before the connection goes back to the pool.
	sqliteQueryOnly bool
}

// prepare sets the transaction's statement timeout (PostgreSQL) or makes
// the connection read-only (SQLite, whose transactions have no READ ONLY).
func (r *reader) prepare(ctx context.Context) error {
	switch r.dialect {
	case "postgres":
		ms := max(r.timeout.Milliseconds(), 1)
		if _, err := r.tx.ExecContext(ctx, "SET LOCAL statement_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
			return fmt.Errorf("set statement_timeout: %w", err)
		}
	case "sqlite":
		if _, err := r.tx.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
			return fmt.Errorf("make the connection read-only: %w", err)
		}
		r.sqliteQueryOnly = true
	}
	return nil
}

// finish undoes what prepare did to the connection.
func (r *reader) finish() {
	if r.sqliteQueryOnly {
		// A fresh context: the check's may have ended, and the pooled
		// connection must not stay read-only.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.tx.ExecContext(ctx, "PRAGMA query_only = 0") //nolint:errcheck // the rollback follows either way
	}
}

// bounded gives a MariaDB statement a server-side time limit; elsewhere it
// returns q (PostgreSQL's limit is the transaction's, MySQL's the context).
func (r *reader) bounded(q string) string {
	if r.maria {
		secs := strconv.FormatFloat(max(r.timeout.Seconds(), 0.001), 'f', 3, 64)
		return "SET STATEMENT max_statement_time=" + secs + " FOR " + q
	}
	return q
}

// pgReplicationLag is the lag in seconds: on a standby, how far its replay
// is behind (0 when it has replayed all it received, so an idle primary
// does not look like lag); on a primary, the largest replay_lag of its
// standbys (0 without any). The lag columns need the pg_monitor role (or
// pg_read_all_stats); without it they read NULL, that is 0.
const pgReplicationLag = `SELECT CASE WHEN pg_is_in_recovery() THEN
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END
ELSE COALESCE((SELECT MAX(EXTRACT(EPOCH FROM replay_lag)) FROM pg_stat_replication), 0) END::float8`

func (r *reader) replicationLag(ctx context.Context) (float64, error) {
	if r.dialect == "postgres" {
		var v float64
		if err := r.tx.QueryRowContext(ctx, pgReplicationLag).Scan(&v); err != nil {
			return 0, fmt.Errorf("read replication lag: %w", err)
		}
		return v, nil
	}
	// MySQL 8.0.22+ and MariaDB 10.5.1+ say REPLICA, older servers SLAVE.
	rows, err := r.tx.QueryContext(ctx, "SHOW REPLICA STATUS")
	if err != nil {
		var err2 error
		if rows, err2 = r.tx.QueryContext(ctx, "SHOW SLAVE STATUS"); err2 != nil {
			return 0, fmt.Errorf("read replica status: %w", errors.Join(err, err2))
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	at := -1
	for i, c := range cols {
		if strings.EqualFold(c, "Seconds_Behind_Master") || strings.EqualFold(c, "Seconds_Behind_Source") {
			at = i
		}
	}
	if at < 0 {
		return 0, fmt.Errorf("read replica status: no Seconds_Behind_Master or Seconds_Behind_Source column in %v", cols)
	}
	lag := 0.0
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("read replica status: %w", err)
		}
		if !vals[at].Valid {
			return 0, errors.New("replication is not running (Seconds_Behind_Master is NULL)")
		}
		v, err := strconv.ParseFloat(vals[at].String, 64)
		if err != nil {
			return 0, fmt.Errorf("read replica status: lag %q: %w", vals[at].String, err)
		}
		lag = max(lag, v)
	}
	return lag, rows.Err()
}

// pgAutovacuum counts the autovacuum workers vacuuming the table; its first
// column says whether the table exists (to_regclass: NULL when not).
const pgAutovacuum = `SELECT to_regclass($1) IS NOT NULL, (SELECT count(*) FROM pg_stat_progress_vacuum v
  JOIN pg_stat_activity a ON a.pid = v.pid
  WHERE v.relid = to_regclass($1) AND a.backend_type = 'autovacuum worker')::float8`

func (r *reader) autovacuum(ctx context.Context, table string) (float64, error) {
	var exists bool
	var n float64
	if err := r.tx.QueryRowContext(ctx, pgAutovacuum, quoteTable(table)).Scan(&exists, &n); err != nil {
		return 0, fmt.Errorf("read vacuum progress: %w", err)
	}
	if !exists {
		return 0, fmt.Errorf("table %s does not exist", table)
	}
	return n, nil
}

// quoteTable quotes each part of a validated "table" or "schema.table", so
// the name is taken as written (case included).
func quoteTable(t string) string {
	parts := strings.Split(t, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// pgLockWaits counts the database's sessions waiting for a heavyweight lock
// (row, table, transaction id: what a batch's UPDATE or a migration's ALTER
// waits on).
const pgLockWaits = `SELECT count(*)::float8 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`

// myLockWaits counts the database's InnoDB transactions waiting for a row
// lock and its sessions waiting for a metadata or table lock (an ALTER
// TABLE and what queues behind it). Sessions are matched to the database
// through the process list, which shows other users' sessions only with
// the PROCESS privilege. InnoDB refreshes INNODB_TRX only when it was not
// read for 100 ms, so checks far apart (DRIPFLOW_HEALTH_INTERVAL) see it
// fresh.
const myLockWaits = `SELECT (SELECT COUNT(*) FROM information_schema.INNODB_TRX t
    JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
    WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE())
  + (SELECT COUNT(*) FROM information_schema.PROCESSLIST
    WHERE DB = DATABASE() AND (STATE LIKE 'Waiting for%metadata lock' OR STATE LIKE 'Waiting for table level lock'))`

func (r *reader) lockWaits(ctx context.Context) (float64, error) {
	q := pgLockWaits
	if r.dialect == "mysql" {
		q = r.bounded(myLockWaits)
	}
	var n float64
	if err := r.tx.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count lock waits: %w", err)
	}
	return n, nil
}

// query runs a definition's query: one row whose first column is a
// boolean; 1 healthy, 0 not.
func (r *reader) query(ctx context.Context, q string) (float64, error) {
	q = strings.TrimRight(strings.TrimSpace(q), ";")
	if r.dialect == "mysql" {
		q = r.bounded(q)
	}
	rows, err := r.tx.QueryContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("run query: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("run query: %w", err)
		}
		return 0, errors.New("the query returned no row; it must return one boolean")
	}
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, fmt.Errorf("run query: %w", err)
	}
	ok, err := truth(vals[0])
	if err != nil {
		return 0, err
	}
	if ok {
		return 1, nil
	}
	return 0, nil
}

// truth reads a boolean as the drivers return it: bool (PostgreSQL), an
// integer (MySQL, SQLite) or its text.
func truth(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, errors.New("the query returned NULL; it must return one boolean")
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case []byte:
		return truth(string(x))
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "y", "yes", "on":
			return true, nil
		case "0", "f", "false", "n", "no", "off":
			return false, nil
		}
		return false, fmt.Errorf("the query returned %q; it must return one boolean", x)
	}
	return false, fmt.Errorf("the query returned a %T; it must return one boolean", v)
}
