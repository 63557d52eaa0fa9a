package backfills_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// dryDialects are the three SQL dialects a dry run must leave unchanged.
var dryDialects = []dialect{
	{"postgres", testenv.PostgresURL},
	{"mysql", testenv.MySQLURL},
	{"sqlite", testenv.SQLiteURL},
}

// tableRows reads a whole table as text, in key order: what must not change.
func tableRows(t *testing.T, db *gorm.DB, table, key string) string {
	t.Helper()
	var rows []map[string]any
	if err := db.Table(table).Order(key).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintln(&b, engine.NormalizeRow(r))
	}
	return b.String()
}

func TestDryRunChangesNothing(t *testing.T) {
	for _, d := range dryDialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := sqlstore.OpenDB(ctx, d.url(t), 0)
			if err != nil {
				t.Fatalf("open %s: %v", d.name, err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			})
			if err := db.AutoMigrate(&Account{}); err != nil {
				t.Fatal(err)
			}
			// A handle of the definition's own, outside the transaction
			// it is given: what a dry run cannot roll back.
			own := db.Session(&gorm.Session{NewDB: true})
			defs := map[string]backfills.Definition[Account, PlanParams]{
				"range_update": {ProcessRange: func(_ context.Context, r *backfills.Range[Account, PlanParams]) error {
					return r.Updates(map[string]any{"plan": r.Params.Plan, "touched": gorm.Expr("touched + 1")})
				}},
				"element_save": {ProcessElement: func(_ context.Context, e *backfills.Element[Account, PlanParams]) error {
					if e.Record.ID%2 == 0 {
						return backfills.ErrSkip
					}
					e.Record.Plan, e.Record.Credits = e.Params.Plan, e.Record.Credits+100
					return e.DB.Save(e.Record).Error
				}},
				"batch_delete": {ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, PlanParams]) error {
					return b.DB.Where("id IN ?", b.Keys()).Delete(&Account{}).Error
				}},
				"nested_tx": {ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, PlanParams]) error {
					// gorm's Transaction inside the given one is a savepoint.
					return b.DB.Transaction(func(tx *gorm.DB) error {
						return tx.Model(&Account{}).Where("id IN ?", b.Keys()).Update("plan", "nested").Error
					})
				}},
				"commits": {ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, PlanParams]) error {
					if err := b.DB.Model(&Account{}).Where("id IN ?", b.Keys()).Update("plan", "committed").Error; err != nil {
						return err
					}
					return b.DB.Commit().Error
				}},
				"exec_commit": {ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, PlanParams]) error {
					if err := b.DB.Model(&Account{}).Where("id IN ?", b.Keys()).Update("plan", "committed").Error; err != nil {
						return err
					}
					return b.DB.Exec("COMMIT").Error
				}},
				"ddl": {ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, PlanParams]) error {
					// MySQL commits before DDL; the others roll it back.
					return b.DB.Exec("CREATE TABLE dry_run_ddl (id int)").Error
				}},
				"own_handle": {ProcessBatch: func(ctx context.Context, b *backfills.Batch[Account, PlanParams]) error {
					return own.WithContext(ctx).Model(&Account{}).Where("id IN ?", b.Keys()).Update("plan", "leaked").Error
				}},
			}
			for _, name := range []string{"range_update", "element_save", "batch_delete", "nested_tx", "commits", "exec_commit", "ddl", "own_handle"} {
				seedAccounts(t, db, 40)
				def := defs[name]
				def.Name, def.Scope = name, scopeAccounts
				p := open(t, mustNew(t, def), db, `{"plan":"pro"}`)
				before := tableRows(t, db, "accounts", "id")
				rep, err := engine.DryRun(ctx, p, engine.DryRunOptions{Batches: 2, BatchSize: 4})
				if err != nil {
					t.Fatalf("%s: DryRun: %v", name, err)
				}
				after := tableRows(t, db, "accounts", "id")
				if len(rep.Batches) != 2 || !rep.More || !rep.Sampled {
					t.Fatalf("%s: %d batches, more %v, sampled %v; want 2 sampled batches and more", name, len(rep.Batches), rep.More, rep.Sampled)
				}
				// The batches are the first ranges a run plans: active
				// accounts are ids 3, 6, 9, …; 4 of them per batch.
				if b := rep.Batches[0]; b.Lo != "" || b.Seq != 1 || rep.Batches[1].Lo != b.Hi {
					t.Errorf("%s: batches (%s, %s], (%s, %s]; want consecutive from the start", name, b.Lo, b.Hi, rep.Batches[1].Lo, rep.Batches[1].Hi)
				}
				if name == "own_handle" && d.name == "sqlite" {
					// SQLite's transactions take the write lock at once: the
					// other handle's write waits for it, times out, and fails
					// the batch; nothing leaks.
					if !strings.Contains(rep.Batches[0].Error, "locked") || before != after {
						t.Errorf("own_handle on sqlite: error %q, table changed %v; want the write refused as locked", rep.Batches[0].Error, before != after)
					}
					continue
				}
				if name == "own_handle" {
					if !rep.Batches[0].Leaked || !strings.Contains(rep.Batches[0].Error, "outside the dry run's transaction") {
						t.Errorf("own_handle: leaked %v, error %q; want the leak reported", rep.Batches[0].Leaked, rep.Batches[0].Error)
					}
					if before == after {
						t.Error("own_handle: the table is unchanged; the test's leak did not happen")
					}
					continue
				}
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("%s: the dry run changed the table (-before +after):\n%s", name, diff)
				}
				b := rep.Batches[0]
				if name == "ddl" {
					if db.Migrator().HasTable("dry_run_ddl") {
						t.Errorf("ddl: the table the dry run created is still there")
					}
					if refused := strings.Contains(b.Error, "cannot be committed"); refused != (d.name == "mysql") {
						t.Errorf("ddl on %s: batch error %q; want it refused on MySQL only", d.name, b.Error)
					}
					continue
				}
				switch name {
				case "commits", "exec_commit":
					if !strings.Contains(b.Error, "cannot be committed") {
						t.Errorf("%s: batch error %q; want the refused commit", name, b.Error)
					}
					continue
				}
				if b.Error != "" || b.Leaked {
					t.Fatalf("%s: batch error %q, leaked %v", name, b.Error, b.Leaked)
				}
				wantWritten := map[string]int64{"range_update": 4, "element_save": 2, "batch_delete": 4, "nested_tx": 4}[name]
				if b.Result.RowsWritten != wantWritten {
					t.Errorf("%s: %d rows would change, want %d", name, b.Result.RowsWritten, wantWritten)
				}
				if len(b.Sample) == 0 {
					t.Fatalf("%s: no sample", name)
				}
				first := b.Sample[0]
				if first.Key != "3" || fmt.Sprint(first.Before["plan"]) != "free" {
					t.Errorf("%s: first sampled row %s before %v; want account 3 with plan free", name, first.Key, first.Before)
				}
				switch name {
				case "range_update":
					if fmt.Sprint(first.After["plan"]) != "pro" || fmt.Sprint(first.After["touched"]) != "1" || !cmp.Equal(first.Changed, []string{"plan", "touched"}) {
						t.Errorf("range_update: after %v, changed %v; want plan pro, touched 1", first.After, first.Changed)
					}
				case "element_save":
					if len(b.Sample) != 2 || fmt.Sprint(first.After["credits"]) != "103" {
						t.Errorf("element_save: %d rows changed, first after %v; want the 2 odd ids (3 and 9), credits 103", len(b.Sample), first.After)
					}
				case "batch_delete":
					if first.After != nil || len(b.Sample) != 4 {
						t.Errorf("batch_delete: after %v, %d rows; want every row deleted", first.After, len(b.Sample))
					}
				case "nested_tx":
					if fmt.Sprint(first.After["plan"]) != "nested" {
						t.Errorf("nested_tx: after %v", first.After)
					}
				}
			}
		})
	}
}

func TestDryRunRefused(t *testing.T) {
	// A pipeline that says nothing about its writes is refused.
	_, err := engine.DryRun(context.Background(), opaquePipeline{}, engine.DryRunOptions{BatchSize: 1})
	if !errors.Is(err, engine.ErrDryRunUnsupported) {
		t.Errorf("DryRun of a pipeline without DryRunCheck: %v, want ErrDryRunUnsupported", err)
	}
}

type opaquePipeline struct{ engine.Pipeline }
