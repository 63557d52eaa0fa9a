package sqlstore_test

import (
	"errors"
	"fmt"
	"reflect"
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
			for _, table := range []string{"dripflow_runs", "dripflow_batches", "dripflow_definitions", "dripflow_flows", "dripflow_run_counters", "dripflow_flow_specs"} {
				if !db.Migrator().HasTable(table) {
					t.Errorf("table %s missing after Migrate", table)
				}
			}
			for table, indexes := range map[string][]string{
				"dripflow_runs":    {"dripflow_runs_state_id", "dripflow_runs_definition_id", "dripflow_runs_created_by_id", "dripflow_runs_definition_state_id"},
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

// downgradeToV2 undoes migration 3 on a migrated database, as if it had
// been migrated by a dripflow of schema version 2.
func downgradeToV2(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	downgradeToV3(t, db, dialect)
	dropIndex := "DROP INDEX dripflow_runs_definition_state_id"
	if dialect == "mysql" {
		dropIndex += " ON dripflow_runs"
	}
	stmts := []string{
		"DROP TABLE dripflow_flow_specs",
		dropIndex,
		"ALTER TABLE dripflow_runs DROP COLUMN spec_version",
		"ALTER TABLE dripflow_definitions DROP COLUMN origin",
		"ALTER TABLE dripflow_definitions DROP COLUMN version",
		"ALTER TABLE dripflow_flows DROP COLUMN missed_ticks",
		"ALTER TABLE dripflow_flows DROP COLUMN last_missed_tick",
		"DELETE FROM dripflow_schema_migrations WHERE version >= 3",
	}
	for _, stmt := range stmts {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("downgrade to schema version 2: %s: %v", stmt, err)
		}
	}
}

// Migrating a version 2 database to version 3 keeps its definitions, flows
// and runs: definitions read as code, runs without a spec version, flows
// without missed ticks; and the new store works on them.
func TestMigrationToSpecsKeepsExistingRows(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			if _, err := s.UpsertDefinition(ctx, store.Definition{Name: "old_flow", Kind: store.KindFlow, Description: "from v2"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SetFlowActive(ctx, "old_flow", true); err != nil {
				t.Fatal(err)
			}
			run, err := s.CreateRun(ctx, store.NewRun{Definition: "old_flow", Kind: store.KindFlow,
				Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
			if err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, d.name, url)
			downgradeToV2(t, db, d.name)
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); !errors.Is(err, store.ErrSchemaOutdated) {
				t.Fatalf("Open on a version 2 schema: %v, want ErrSchemaOutdated", err)
			}
			if d.name == "mysql" {
				// MySQL commits each DDL statement: a migration interrupted
				// after some of them is run again from the start.
				for _, stmt := range []string{
					"ALTER TABLE dripflow_runs ADD COLUMN spec_version BIGINT NOT NULL DEFAULT 0",
					"CREATE INDEX dripflow_runs_definition_state_id ON dripflow_runs (definition, state, id)",
				} {
					if err := db.Exec(stmt).Error; err != nil {
						t.Fatalf("half-apply migration 3: %s: %v", stmt, err)
					}
				}
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 3: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			def, err := s2.GetDefinition(ctx, "old_flow")
			if err != nil || def.Origin != store.OriginCode || def.Version != 0 || def.Description != "from v2" {
				t.Fatalf("definition after the migration: %+v, %v; want code, version 0", def, err)
			}
			fs, err := s2.GetFlow(ctx, "old_flow")
			if err != nil || !fs.Active || fs.MissedTicks != 0 || fs.LastMissedTick != nil {
				t.Fatalf("flow after the migration: %+v, %v; want active without missed ticks", fs, err)
			}
			got, err := s2.GetRun(ctx, run.ID)
			if err != nil || got.SpecVersion != 0 || got.State != store.RunScheduled {
				t.Fatalf("run after the migration: %+v, %v", got, err)
			}
			// The run from before the migration keeps the flow busy.
			_, err = s2.CreateRun(ctx, store.NewRun{Definition: "old_flow", Kind: store.KindFlow,
				Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
			var busy *store.FlowBusyError
			if !errors.As(err, &busy) || busy.RunID != run.ID {
				t.Fatalf("second run after the migration: %v, want FlowBusyError for run %d", err, run.ID)
			}
			if _, err := s2.SaveFlowSpec(ctx, store.SaveFlowSpec{Name: "new_flow", Spec: []byte(`{"a":1}`), Create: true}); err != nil {
				t.Fatalf("SaveFlowSpec after the migration: %v", err)
			}
		})
	}
}

// downgradeToV4 undoes migration 5 (the indexes of runs by kind).
func downgradeToV4(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	downgradeToV5(t, db, dialect)
	var stmts []string
	for _, idx := range []string{"dripflow_runs_kind_id", "dripflow_runs_kind_state_id"} {
		stmt := "DROP INDEX " + idx
		if dialect == "mysql" {
			stmt += " ON dripflow_runs"
		}
		stmts = append(stmts, stmt)
	}
	stmts = append(stmts, "DELETE FROM dripflow_schema_migrations WHERE version >= 5")
	for _, stmt := range stmts {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("downgrade to schema version 4: %s: %v", stmt, err)
		}
	}
}

// Migrating a version 4 database to version 5 lists its runs by kind.
func TestMigrationToKindIndexListsExistingRuns(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			opts := store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}
			b, err := s.CreateRun(ctx, store.NewRun{Definition: "old_backfill", Kind: store.KindBackfill, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateRun(ctx, store.NewRun{Definition: "old_flow", Kind: store.KindFlow, Options: opts}); err != nil {
				t.Fatal(err)
			}
			downgradeToV4(t, rawDB(t, d.name, url), d.name)
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); err == nil {
				t.Fatal("a store opened on a version 4 schema")
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 5: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			p, err := s2.ListRuns(ctx, store.RunFilter{Kind: store.KindBackfill})
			if err != nil || len(p.Items) != 1 || p.Items[0].ID != b.ID {
				t.Fatalf("backfills after the migration: %+v, %v; want run %d alone", p.Items, err, b.ID)
			}
		})
	}
}

// downgradeToV5 undoes migration 6 (the adaptive batch size's columns).
func downgradeToV5(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	downgradeToV6(t, db, dialect)
	for _, stmt := range []string{
		"ALTER TABLE dripflow_runs DROP COLUMN target_batch_ns",
		"ALTER TABLE dripflow_runs DROP COLUMN min_batch_size",
		"ALTER TABLE dripflow_runs DROP COLUMN max_batch_size",
		"ALTER TABLE dripflow_batches DROP COLUMN planned_size",
		"DELETE FROM dripflow_schema_migrations WHERE version >= 6",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("downgrade to schema version 5: %s: %v", stmt, err)
		}
	}
}

// Migrating a version 5 database to version 6 keeps its runs and batches:
// they read as not adaptive, planned with size 0 (unknown), and a run
// created after the migration keeps its target and bounds.
func TestMigrationToAdaptiveBatchSize(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			opts := store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}
			old, err := s.CreateRun(ctx, store.NewRun{Definition: "old_backfill", Kind: store.KindBackfill, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.TransitionRun(ctx, old.ID, store.RunRunning, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AppendBatches(ctx, old.ID, store.PlanStep{To: "[1]", Batches: []store.KeyRange{{Hi: "[1]", Size: 10}}}); err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, d.name, url)
			downgradeToV5(t, db, d.name)
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); !errors.Is(err, store.ErrSchemaOutdated) {
				t.Fatalf("Open on a version 5 schema: %v, want ErrSchemaOutdated", err)
			}
			if d.name == "mysql" {
				// Interrupted after its first statement: run again whole.
				if err := db.Exec("ALTER TABLE dripflow_runs ADD COLUMN target_batch_ns BIGINT NOT NULL DEFAULT 0").Error; err != nil {
					t.Fatalf("half-apply migration 6: %v", err)
				}
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 6: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got, err := s2.GetRun(ctx, old.ID)
			if err != nil || !reflect.DeepEqual(got.Options, opts) || got.Options.Adaptive() {
				t.Fatalf("run after the migration: %+v, %v; want options %+v, not adaptive", got.Options, err, opts)
			}
			b, err := s2.GetBatch(ctx, old.ID, 1)
			if err != nil || b.Size != 0 || b.Hi != "[1]" {
				t.Fatalf("batch after the migration: %+v, %v; want size 0 (planned before sizes were kept)", b, err)
			}
			adaptive := store.RunOptions{BatchSize: 100, MaxAttempts: 1, MaxInFlight: 1,
				TargetBatchTime: 250 * time.Millisecond, MinBatchSize: 5, MaxBatchSize: 5000}
			r, err := s2.CreateRun(ctx, store.NewRun{Definition: "new_backfill", Kind: store.KindBackfill, Options: adaptive})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s2.GetRun(ctx, r.ID); err != nil || !reflect.DeepEqual(got.Options, adaptive) {
				t.Fatalf("adaptive run after the migration: %+v, %v; want %+v", got.Options, err, adaptive)
			}
		})
	}
}

// downgradeToV6 undoes migration 7 (the runs' health checks and holds).
func downgradeToV6(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	for _, stmt := range []string{
		"ALTER TABLE dripflow_runs DROP COLUMN health_checks",
		"ALTER TABLE dripflow_runs DROP COLUMN held",
		"DELETE FROM dripflow_schema_migrations WHERE version >= 7",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("downgrade to schema version 6: %s: %v", stmt, err)
		}
	}
}

// Migrating a version 6 database to version 7 keeps its runs, without
// health checks or holds, and the new store records both on them.
func TestMigrationToHealthChecksKeepsRuns(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			run, err := s.CreateRun(ctx, store.NewRun{Definition: "old_backfill", Kind: store.KindBackfill,
				Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
			if err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, d.name, url)
			downgradeToV6(t, db, d.name)
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); err == nil {
				t.Fatal("a store opened on a version 6 schema")
			}
			if d.name == "mysql" {
				// Half applied: the first column made it, the second not.
				if err := db.Exec("ALTER TABLE dripflow_runs ADD COLUMN health_checks MEDIUMTEXT NULL").Error; err != nil {
					t.Fatal(err)
				}
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 7: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got, err := s2.GetRun(ctx, run.ID)
			if err != nil || got.Options.HealthChecks != nil || got.Held != nil {
				t.Fatalf("run after the migration: %+v, %v; want no checks and no hold", got, err)
			}
			h := &store.RunHold{Reason: "lock waits 3 > 0", Check: "lock_waits", Since: time.Now()}
			if err := s2.SetRunHold(ctx, run.ID, h); err != nil {
				t.Fatal(err)
			}
			if got, err := s2.GetRun(ctx, run.ID); err != nil || got.Held == nil || got.Held.Reason != h.Reason {
				t.Fatalf("hold after the migration: %+v, %v", got.Held, err)
			}
		})
	}
}
