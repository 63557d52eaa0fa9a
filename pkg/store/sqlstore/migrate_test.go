package sqlstore_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// rawDB opens a plain gorm connection to the database at url, as an
// application with its own *gorm.DB would, closed when the test ends.
func rawDB(t *testing.T, dialect, url string) *gorm.DB {
	t.Helper()
	var d gorm.Dialector
	switch dialect {
	case "postgres":
		d = postgres.Open(url)
	case "mysql":
		rest := strings.TrimPrefix(url, "mysql://")
		userinfo, hostdb, _ := strings.Cut(rest, "@")
		host, db, _ := strings.Cut(hostdb, "/")
		d = gormmysql.Open(fmt.Sprintf("%s@tcp(%s)/%s?parseTime=true&loc=UTC", userinfo, host, db))
	case "sqlite":
		d = sqlite.Open(strings.TrimPrefix(url, "sqlite://") + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate")
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

type migrationRow struct {
	Version   int64
	AppliedAt time.Time
}

func appliedMigrations(t *testing.T, db *gorm.DB) []migrationRow {
	t.Helper()
	var rows []migrationRow
	if err := db.Raw("SELECT version, applied_at FROM dripflow_schema_migrations ORDER BY version").Scan(&rows).Error; err != nil {
		t.Fatalf("read dripflow_schema_migrations: %v", err)
	}
	return rows
}

func TestMigrate(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			db := rawDB(t, d.name, url)

			// An unmigrated database is refused.
			_, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if !errors.Is(err, store.ErrSchemaOutdated) || !strings.Contains(err.Error(), "dripflow migrate") {
				t.Fatalf("Open before migrating: %v, want ErrSchemaOutdated telling to run `dripflow migrate`", err)
			}
			_, err = sqlstore.New(ctx, db, sqlstore.Config{})
			if !errors.Is(err, store.ErrSchemaOutdated) {
				t.Fatalf("New before migrating: %v, want ErrSchemaOutdated", err)
			}

			// Fresh → current.
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			first := appliedMigrations(t, db)
			if len(first) != sqlstore.SchemaVersion || first[len(first)-1].Version != sqlstore.SchemaVersion {
				t.Fatalf("applied migrations %+v, want 1..%d", first, sqlstore.SchemaVersion)
			}
			for _, table := range []string{"dripflow_runs", "dripflow_batches", "dripflow_definitions", "dripflow_flows"} {
				if !db.Migrator().HasTable(table) {
					t.Errorf("table %s missing after Migrate", table)
				}
			}
			for table, indexes := range map[string][]string{
				"dripflow_runs":    {"dripflow_runs_state_id", "dripflow_runs_definition_id", "dripflow_runs_created_by_id"},
				"dripflow_batches": {"dripflow_batches_run_state_seq"},
			} {
				for _, idx := range indexes {
					if !db.Migrator().HasIndex(table, idx) {
						t.Errorf("index %s on %s missing after Migrate", idx, table)
					}
				}
			}

			// Twice is a no-op, including through the URL.
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("MigrateURL on a current schema: %v", err)
			}
			again := appliedMigrations(t, db)
			if len(again) != len(first) || !again[0].AppliedAt.Equal(first[0].AppliedAt) {
				t.Fatalf("migrating again changed the migrations table: %+v, was %+v", again, first)
			}

			// A current schema opens, by URL and on the application's DB.
			s, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatalf("Open after Migrate: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2, err := sqlstore.New(ctx, db, sqlstore.Config{})
			if err != nil {
				t.Fatalf("New after Migrate: %v", err)
			}
			if err := s2.Close(); err != nil {
				t.Fatalf("Close of a New store: %v", err)
			}
			if err := s2.Ping(ctx); err != nil {
				t.Fatalf("Close of a New store closed the caller's DB: %v", err)
			}

			// A schema from a newer binary is refused by everything.
			newer := int64(sqlstore.SchemaVersion + 1)
			if err := db.Exec("INSERT INTO dripflow_schema_migrations (version, applied_at) VALUES (?, ?)", newer, time.Now().UTC()).Error; err != nil {
				t.Fatalf("insert a newer version: %v", err)
			}
			err = sqlstore.Migrate(ctx, db)
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew", err)
			}
			_, err = sqlstore.Open(ctx, url, sqlstore.Config{})
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Open on a newer schema: %v, want ErrSchemaTooNew", err)
			}
			for _, v := range []string{fmt.Sprint(newer), fmt.Sprint(sqlstore.SchemaVersion)} {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("ErrSchemaTooNew message %q does not name version %s", err, v)
				}
			}
			_, err = sqlstore.New(ctx, db, sqlstore.Config{})
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("New on a newer schema: %v, want ErrSchemaTooNew", err)
			}
			if got := appliedMigrations(t, db); len(got) != len(first)+1 {
				t.Fatalf("a refused Migrate changed the migrations table: %+v", got)
			}
		})
	}
}

// Concurrent migrators of one fresh database serialise: all succeed and
// every migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			var wg sync.WaitGroup
			errs := make([]error, 6)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = sqlstore.MigrateURL(ctx, url)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("migrator %d: %v", i, err)
				}
			}
			got := appliedMigrations(t, rawDB(t, d.name, url))
			if len(got) != sqlstore.SchemaVersion {
				t.Fatalf("applied migrations %+v, want each of 1..%d once", got, sqlstore.SchemaVersion)
			}
		})
	}
}
