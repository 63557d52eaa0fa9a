package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// migrateLockKey names the lock concurrent migrators serialise on
// (pg_advisory_xact_lock takes a number, GET_LOCK a name).
const (
	migrateLockKey  int64 = 0x64726970666c6f77 // "dripflow"
	migrateLockName       = "dripflow_migrate"
	// migrateLockWait bounds how long a migrator waits for another one.
	migrateLockWait = 5 * time.Minute
)

// MigrateURL connects to the database at databaseURL, migrates it to
// SchemaVersion and disconnects. It is what `dripflow migrate` runs.
func MigrateURL(ctx context.Context, databaseURL string) error {
	db, _, err := openURL(ctx, databaseURL, 2)
	if err != nil {
		return err
	}
	defer closeDB(db)
	return Migrate(ctx, db)
}

// Migrate brings the database's schema up to SchemaVersion by applying, in
// order, every migration it has not applied yet, and records each one in
// dripflow_schema_migrations. Running it on a current schema changes nothing.
// A database migrated by a newer dripflow is refused with
// store.ErrSchemaTooNew. Concurrent migrators serialise: on PostgreSQL on a
// transaction-level advisory lock (and all migrations commit together), on
// MySQL on GET_LOCK, on SQLite on the database's write lock.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if db == nil {
		return errors.New("migrate: nil *gorm.DB")
	}
	d, err := dialectOf(db)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db = db.Session(&gorm.Session{NewDB: true, SkipDefaultTransaction: true}).WithContext(ctx)
	switch d {
	case dialectPostgres:
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLockKey).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			return migrateLocked(tx, d)
		})
	case dialectMySQL:
		// DDL commits implicitly on MySQL, so the lock is the connection's,
		// not a transaction's: pin one connection for lock, work and unlock.
		err = db.Connection(func(conn *gorm.DB) error {
			var got *int64
			if err := conn.Raw("SELECT GET_LOCK(?, ?)", migrateLockName, int(migrateLockWait.Seconds())).Scan(&got).Error; err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			if got == nil || *got != 1 {
				return fmt.Errorf("take migration lock: another migration held it for %s", migrateLockWait)
			}
			// Released even when ctx has ended, so the pooled connection
			// does not keep holding it.
			defer conn.WithContext(context.WithoutCancel(ctx)).Exec("SELECT RELEASE_LOCK(?)", migrateLockName)
			return migrateLocked(conn, d)
		})
	case dialectSQLite:
		err = retrying(ctx, func() error {
			return db.Transaction(func(tx *gorm.DB) error { return migrateLocked(tx, d) })
		})
	}
	if err != nil {
		return fmt.Errorf("migrate %s store: %w", d, err)
	}
	return nil
}

// migrateLocked applies the missing migrations while holding the migration
// lock.
func migrateLocked(db *gorm.DB, d dialect) error {
	if err := db.Exec(bootstrap[d]).Error; err != nil {
		return fmt.Errorf("create %s: %w", migrationsTable, err)
	}
	current, err := appliedVersion(db)
	if err != nil {
		return err
	}
	if current > SchemaVersion {
		return tooNew(current)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		for i, stmt := range m.up[d] {
			// A session of its own per statement, so an error skipped here
			// does not stick to the next statement.
			if err := db.Session(&gorm.Session{NewDB: true}).Exec(stmt).Error; err != nil && !(d == dialectMySQL && alreadyApplied(err)) {
				return fmt.Errorf("migration %d (%s), statement %d: %w", m.version, m.name, i+1, err)
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := db.Exec("INSERT INTO "+migrationsTable+" (version, applied_at) VALUES (?, ?)", m.version, now).Error; err != nil {
			return fmt.Errorf("record migration %d: %w", m.version, err)
		}
	}
	return nil
}

// alreadyApplied reports whether a MySQL statement failed because what it
// adds is there already: a migration interrupted after some of its
// statements committed (MySQL commits each DDL statement on its own) is run
// again from its first statement.
func alreadyApplied(err error) bool {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return false
	}
	switch myErr.Number {
	case 1050, 1060, 1061: // table, column, index name exists
		return true
	}
	return false
}

// appliedVersion returns the highest recorded migration, 0 for none.
func appliedVersion(db *gorm.DB) (int64, error) {
	var v *int64
	if err := db.Raw("SELECT MAX(version) FROM " + migrationsTable).Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// hasMigrationsTable asks whether the migrations table exists, where the
// store's queries would find it.
var hasMigrationsTable = map[dialect]string{
	dialectPostgres: "SELECT to_regclass(?) IS NOT NULL",
	dialectMySQL:    "SELECT COUNT(*) > 0 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
	dialectSQLite:   "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
}

// checkSchema refuses a database whose schema is not at SchemaVersion.
func checkSchema(ctx context.Context, db *gorm.DB, d dialect) error {
	db = db.Session(&gorm.Session{NewDB: true}).WithContext(ctx)
	var has bool
	if err := db.Raw(hasMigrationsTable[d], migrationsTable).Scan(&has).Error; err != nil {
		return fmt.Errorf("check %s store schema: %w", d, err)
	}
	var current int64
	if has {
		var err error
		if current, err = appliedVersion(db); err != nil {
			return fmt.Errorf("check %s store schema: %w", d, err)
		}
	}
	switch {
	case current < SchemaVersion:
		return fmt.Errorf("%w: the %s database is at schema version %d, this binary needs %d: run `dripflow migrate`",
			store.ErrSchemaOutdated, d, current, SchemaVersion)
	case current > SchemaVersion:
		return fmt.Errorf("%s database: %w", d, tooNew(current))
	}
	return nil
}

func tooNew(current int64) error {
	return fmt.Errorf("%w: the database is at schema version %d, this binary knows only up to %d: upgrade dripflow",
		store.ErrSchemaTooNew, current, SchemaVersion)
}

// retrying runs fn again while it fails with a retryable error.
func retrying(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == txAttempts || !retryable(err) {
			return err
		}
		select {
		case <-time.After(txBackoff << attempt):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}
