package sqlstore_test

import (
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/store/storetest"
)

// downgradeToV3 undoes migration 4 on a migrated database, as if it had
// been migrated by a dripflow of schema version 3.
func downgradeToV3(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	downgradeToV4(t, db, dialect)
	for _, stmt := range []string{
		"DROP TABLE dripflow_run_events",
		"DELETE FROM dripflow_schema_migrations WHERE version >= 4",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("downgrade to schema version 3: %s: %v", stmt, err)
		}
	}
}

// `dripflow migrate` upgrades a version 3 database: its runs keep their
// state and get an empty timeline that can be appended to.
func TestMigrationToTimeline(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			run, err := s.CreateRun(ctx, store.NewRun{Definition: "old", Kind: store.KindBackfill, CreatedBy: "alice",
				Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
			if err != nil {
				t.Fatal(err)
			}
			db := rawDB(t, d.name, url)
			downgradeToV3(t, db, d.name)
			if _, err := sqlstore.Open(ctx, url, sqlstore.Config{}); !errors.Is(err, store.ErrSchemaOutdated) {
				t.Fatalf("Open on a version 3 schema: %v, want ErrSchemaOutdated", err)
			}
			if err := sqlstore.MigrateURL(ctx, url); err != nil {
				t.Fatalf("migrate to version 5: %v", err)
			}
			s2, err := sqlstore.Open(ctx, url, sqlstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got, err := s2.GetRun(ctx, run.ID)
			if err != nil || got.CreatedBy != "alice" || got.State != store.RunScheduled {
				t.Fatalf("run after the migration: %+v, %v", got, err)
			}
			if evs, err := s2.ListRunEvents(ctx, run.ID, store.EventFilter{}); err != nil || len(evs) != 0 {
				t.Fatalf("timeline of a run from before the migration: %+v, %v; want empty", evs, err)
			}
			ev, inserted, err := s2.AppendRunEvent(ctx, store.RunEvent{RunID: run.ID, Kind: store.EventNote, Message: "after upgrade"})
			if err != nil || !inserted || ev.ID != 1 {
				t.Fatalf("append after the migration: %+v, %v, %v", ev, inserted, err)
			}
			if !db.Migrator().HasIndex("dripflow_run_events", "dripflow_run_events_key") {
				t.Errorf("index dripflow_run_events_key missing after the migration")
			}
		})
	}
}

// A run keeps its newest events: beyond the cap the oldest are dropped and
// their keys can be written again. Events are deleted with their run.
func TestRunEventsCap(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			url := d.url(t)
			s := openStore(t, url)
			sqlstore.SetMaxEvents(s, 3)
			run := storetest.CheckEventsCap(t, s)
			if err := s.DB().WithContext(ctx).Exec("DELETE FROM dripflow_runs WHERE id = ?", run.ID).Error; err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := s.DB().WithContext(ctx).Raw("SELECT COUNT(*) FROM dripflow_run_events WHERE run_id = ?", run.ID).Scan(&n).Error; err != nil || n != 0 {
				t.Fatalf("events of a deleted run: %d, %v; want 0", n, err)
			}
		})
	}
}
