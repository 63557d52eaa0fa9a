package backfills_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Account is the model of the backfills under test.
type Account struct {
	ID      int64
	Plan    string
	Status  string
	Credits int
	Touched int // how many times a backfill processed the row
}

// Tag has a string primary key that is not called id.
type Tag struct {
	Code    string `gorm:"primaryKey;size:40"`
	Touched int
}

// LogLine has no primary key; backfills over it must name their key.
type LogLine struct {
	Seq     int64 `gorm:"uniqueIndex"`
	Touched int
}

// PlanParams are the params of the account backfills.
type PlanParams struct {
	Status     string `json:"status" default:"active" enum:"active,trial,closed"`
	Plan       string `json:"plan" required:"true"`
	MinCredits int    `json:"min_credits"`
}

func scopeAccounts(db *gorm.DB, p PlanParams) *gorm.DB {
	return db.Where("status = ? AND credits >= ?", p.Status, p.MinCredits)
}

type dialect struct {
	name string
	url  func(testing.TB) string
}

// dialects of the database tests: the backfills' in-place writes are
// exercised on PostgreSQL, SQLite and MariaDB/MySQL.
var dialects = []dialect{
	{"postgres", testenv.PostgresURL},
	{"sqlite", testenv.SQLiteURL},
	{"mysql", testenv.MySQLURL},
}

func forEachDialect(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db, err := sqlstore.OpenDB(context.Background(), d.url(t), 0)
			if err != nil {
				t.Fatalf("open %s: %v", d.name, err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			})
			if err := db.AutoMigrate(&Account{}, &Tag{}, &LogLine{}); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

var statuses = []string{"active", "trial", "closed"}

// seedAccounts inserts n accounts with ids 1..n in a scattered order.
func seedAccounts(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	if err := db.Exec("DELETE FROM accounts").Error; err != nil {
		t.Fatal(err)
	}
	var rows []Account
	for i := 0; i < n; i++ {
		id := int64((i*17)%n + 1) // 17 is prime to the n used
		rows = append(rows, Account{ID: id, Plan: "free", Status: statuses[id%3], Credits: int(id % 7)})
	}
	if err := db.Create(&rows).Error; err != nil {
		t.Fatal(err)
	}
}

func accounts(t *testing.T, db *gorm.DB) []Account {
	t.Helper()
	var out []Account
	if err := db.Order("id").Find(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// run plans the pipeline with Next from "" and processes range by range,
// every range planned before any is processed when planFirst, so the data
// may change in between. It returns the summed results.
func run(t *testing.T, p engine.Pipeline, size int, between func()) store.Result {
	t.Helper()
	ctx := context.Background()
	type rng struct{ lo, hi string }
	var ranges []rng
	lo := p.Start("ignored watermark")
	if lo != "" {
		t.Fatalf("a backfill starts at %q, want the beginning", lo)
	}
	for {
		hi, more, ok, err := p.Next(ctx, lo, size)
		if err != nil {
			t.Fatalf("Next(%q): %v", lo, err)
		}
		if !ok {
			break
		}
		ranges = append(ranges, rng{lo, hi})
		lo = hi
		if !more {
			if _, _, ok, err := p.Next(ctx, lo, size); ok || err != nil {
				t.Fatalf("Next after the last batch: ok %v, %v", ok, err)
			}
			break
		}
	}
	if between != nil {
		between()
	}
	var total store.Result
	for _, r := range ranges {
		res, err := p.Process(ctx, nil, r.lo, r.hi)
		if err != nil {
			t.Fatalf("Process(%s, %s]: %v", r.lo, r.hi, err)
		}
		total.RowsRead += res.RowsRead
		total.RowsWritten += res.RowsWritten
		total.RowsSkipped += res.RowsSkipped
	}
	return total
}

func open(t *testing.T, j engine.Job, db *gorm.DB, raw string) engine.Pipeline {
	t.Helper()
	p, err := j.Open(context.Background(), engine.Env{DB: db}, json.RawMessage(raw))
	if err != nil {
		t.Fatalf("Open(%s): %v", raw, err)
	}
	return p
}

func mustNew[M, P any](t *testing.T, d backfills.Definition[M, P]) engine.Job {
	t.Helper()
	j, err := backfills.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestNewValidation(t *testing.T) {
	batch := func(context.Context, *backfills.Batch[Account, PlanParams]) error { return nil }
	element := func(context.Context, *backfills.Element[Account, PlanParams]) error { return nil }
	rng := func(context.Context, *backfills.Range[Account, PlanParams]) error { return nil }
	for _, tc := range []struct {
		name string
		new  func() (engine.Job, error)
		want []string
	}{
		{"neither", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, PlanParams]{Name: "fill_plans"})
		}, []string{`"fill_plans"`, "exactly one of ProcessBatch, ProcessElement or ProcessRange", "none is set"}},
		{"both", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, PlanParams]{Name: "fill_both", ProcessBatch: batch, ProcessElement: element})
		}, []string{`"fill_both"`, "exactly one of", "ProcessBatch and ProcessElement are set"}},
		{"batch and range", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, PlanParams]{Name: "fill_two", ProcessBatch: batch, ProcessRange: rng})
		}, []string{`"fill_two"`, "exactly one of", "ProcessBatch and ProcessRange are set"}},
		{"no name", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, PlanParams]{ProcessBatch: batch})
		}, []string{"Name is required"}},
		{"model not a struct", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[int, struct{}]{Name: "ints", ProcessElement: func(context.Context, *backfills.Element[int, struct{}]) error { return nil }})
		}, []string{`"ints"`, "model int must be a struct"}},
		{"params not a struct", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, string]{Name: "str_params", ProcessBatch: func(context.Context, *backfills.Batch[Account, string]) error { return nil }})
		}, []string{`"str_params"`, "must be a struct"}},
		{"unsupported param type", func() (engine.Job, error) {
			return backfills.New(backfills.Definition[Account, struct{ IDs []int }]{Name: "slice_params", ProcessBatch: func(context.Context, *backfills.Batch[Account, struct{ IDs []int }]) error { return nil }})
		}, []string{`"slice_params"`, "IDs", "unsupported type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := tc.new()
			if err == nil {
				t.Fatalf("New = %v, want an error", j.Definition().Name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestDefinition(t *testing.T) {
	j := mustNew(t, backfills.Definition[Account, PlanParams]{
		Name: "fill_plans", Description: "Give accounts a plan.",
		ProcessBatch: func(context.Context, *backfills.Batch[Account, PlanParams]) error { return nil },
		Options:      backfills.Options{BatchSize: 250},
	})
	def := j.Definition()
	if def.Name != "fill_plans" || def.Kind != store.KindBackfill || def.Description != "Give accounts a plan." {
		t.Errorf("definition = %+v", def)
	}
	// The configuration shown on the definition's page says which key
	// batches follow, never "key": null.
	if string(def.Config) != `{"key":"primary key","model":"backfills_test.Account","process":"batch"}` {
		t.Errorf("config %s", def.Config)
	}
	want := backfills.Defaults
	want.BatchSize = 250
	if diff := cmp.Diff(want, j.Defaults()); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	var schema params.Schema
	if err := json.Unmarshal(def.ParamsSchema, &schema); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range schema.Fields {
		names = append(names, f.Name)
	}
	if !cmp.Equal(names, []string{"status", "plan", "min_credits"}) {
		t.Errorf("schema fields %v", names)
	}

	canon, err := j.CanonicalParams(json.RawMessage(`{"plan":"gold"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(canon) != `{"min_credits":0,"plan":"gold","status":"active"}` {
		t.Errorf("canonical params %s", canon)
	}
	_, err = j.CanonicalParams(json.RawMessage(`{"status":"gone","plan":"x"}`))
	var pe *params.Error
	if !errors.As(err, &pe) || pe.Field != "status" {
		t.Errorf("CanonicalParams with a bad enum value: %v, want a *params.Error on status", err)
	}
}

func TestRegistryRefusesDuplicates(t *testing.T) {
	reg := engine.NewRegistry()
	first := mustNew(t, backfills.Definition[Account, struct{}]{Name: "dup", ProcessBatch: func(context.Context, *backfills.Batch[Account, struct{}]) error { return nil }})
	second := mustNew(t, backfills.Definition[Tag, struct{}]{Name: "dup", ProcessElement: func(context.Context, *backfills.Element[Tag, struct{}]) error { return nil }})
	other := mustNew(t, backfills.Definition[Tag, struct{}]{Name: "other", ProcessElement: func(context.Context, *backfills.Element[Tag, struct{}]) error { return nil }})
	if err := reg.Register(first); err != nil {
		t.Fatal(err)
	}
	err := reg.Register(second)
	if err == nil || !strings.Contains(err.Error(), `"dup"`) || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("second Register of dup: %v, want an error naming it", err)
	}
	if err := reg.Register(other); err != nil {
		t.Errorf("Register other: %v", err)
	}
	if j, ok := reg.Lookup("dup"); !ok || j != first {
		t.Errorf("Lookup(dup) = %v, %v; want the first definition", j, ok)
	}
	if n := len(reg.Jobs()); n != 2 {
		t.Errorf("registry holds %d jobs, want 2", n)
	}
}

// planBackfill sets each account in scope to the run's plan and counts the
// visit, in one statement per batch.
func planBackfill(opts backfills.Options) backfills.Definition[Account, PlanParams] {
	return backfills.Definition[Account, PlanParams]{
		Name:  "test_fill_plans",
		Scope: scopeAccounts,
		ProcessBatch: func(ctx context.Context, b *backfills.Batch[Account, PlanParams]) error {
			if len(b.Keys()) != len(b.Records) {
				return fmt.Errorf("%d keys for %d records", len(b.Keys()), len(b.Records))
			}
			for i, r := range b.Records {
				if b.Keys()[i] != r.ID {
					return fmt.Errorf("key %d is %v, record id %d", i, b.Keys()[i], r.ID)
				}
				if i > 0 && r.ID <= b.Records[i-1].ID {
					return fmt.Errorf("records out of key order: %d after %d", r.ID, b.Records[i-1].ID)
				}
			}
			return b.DB.Model(&Account{}).Where("id IN ?", b.Keys()).
				Updates(map[string]any{"plan": b.Params.Plan, "touched": gorm.Expr("touched + 1")}).Error
		},
		Options: opts,
	}
}

// elementBackfill does the same one record at a time, skipping accounts
// whose id is a multiple of 5.
func elementBackfill() backfills.Definition[Account, PlanParams] {
	return backfills.Definition[Account, PlanParams]{
		Name:  "test_fill_plans_each",
		Scope: scopeAccounts,
		ProcessElement: func(ctx context.Context, e *backfills.Element[Account, PlanParams]) error {
			if e.Record.ID%5 == 0 {
				return fmt.Errorf("account %d: %w", e.Record.ID, backfills.ErrSkip)
			}
			return e.DB.Model(e.Record).Updates(map[string]any{"plan": e.Params.Plan, "touched": gorm.Expr("touched + 1")}).Error
		},
	}
}

// rangeBackfill does what planBackfill does as one UPDATE per batch,
// without loading the records.
func rangeBackfill() backfills.Definition[Account, PlanParams] {
	return backfills.Definition[Account, PlanParams]{
		Name:  "test_fill_plans_range",
		Scope: scopeAccounts,
		ProcessRange: func(ctx context.Context, r *backfills.Range[Account, PlanParams]) error {
			return r.Updates(map[string]any{"plan": r.Params.Plan, "touched": gorm.Expr("touched + 1")})
		},
	}
}

// expectAccounts returns the accounts seeded by seedAccounts(n) after a
// backfill that gave plan to those accepted by changed.
func expectAccounts(n int, plan string, changed func(a Account) bool) []Account {
	var out []Account
	for id := int64(1); id <= int64(n); id++ {
		a := Account{ID: id, Plan: "free", Status: statuses[id%3], Credits: int(id % 7)}
		if changed(a) {
			a.Plan, a.Touched = plan, 1
		}
		out = append(out, a)
	}
	return out
}

func TestProcess(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		const n = 61
		ctx := context.Background()

		for _, tc := range []struct {
			name    string
			def     backfills.Definition[Account, PlanParams]
			params  string
			plan    string
			inScope func(Account) bool
			changed func(Account) bool
		}{
			{
				name: "batch with defaults", def: planBackfill(backfills.Options{}), params: `{"plan":"gold"}`, plan: "gold",
				inScope: func(a Account) bool { return a.Status == "active" },
			},
			{
				name: "batch with params", def: planBackfill(backfills.Options{}), params: `{"plan":"silver","status":"trial","min_credits":"3"}`, plan: "silver",
				inScope: func(a Account) bool { return a.Status == "trial" && a.Credits >= 3 },
			},
			{
				name: "element", def: elementBackfill(), params: `{"plan":"bronze","status":"closed"}`, plan: "bronze",
				inScope: func(a Account) bool { return a.Status == "closed" },
				changed: func(a Account) bool { return a.Status == "closed" && a.ID%5 != 0 },
			},
			{
				name: "range", def: rangeBackfill(), params: `{"plan":"platinum","status":"trial"}`, plan: "platinum",
				inScope: func(a Account) bool { return a.Status == "trial" },
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.changed == nil {
					tc.changed = tc.inScope
				}
				want := expectAccounts(n, tc.plan, tc.changed)
				var inScope, changed int64
				for _, a := range expectAccounts(n, "", func(Account) bool { return false }) {
					if tc.inScope(a) {
						inScope++
					}
					if tc.changed(a) {
						changed++
					}
				}
				for _, size := range []int{1, 4, int(inScope), 1000} {
					seedAccounts(t, db, n)
					pl := open(t, mustNew(t, tc.def), db, tc.params)
					if c, estimated, err := pl.Count(ctx); err != nil || estimated || c != inScope {
						t.Errorf("Count = %d, estimated %v, %v; want exactly %d", c, estimated, err, inScope)
					}
					res := run(t, pl, size, nil)
					wantRes := store.Result{RowsRead: inScope, RowsWritten: changed, RowsSkipped: inScope - changed}
					if diff := cmp.Diff(wantRes, res); diff != "" {
						t.Errorf("size %d: results (-want +got):\n%s", size, diff)
					}
					if diff := cmp.Diff(want, accounts(t, db)); diff != "" {
						t.Errorf("size %d: accounts (-want +got):\n%s", size, diff)
					}
				}
			})
		}

		t.Run("scope is applied again when the batch runs", func(t *testing.T) {
			seedAccounts(t, db, n)
			for _, def := range []backfills.Definition[Account, PlanParams]{planBackfill(backfills.Options{}), elementBackfill(), rangeBackfill()} {
				t.Run(def.Name, func(t *testing.T) {
					seedAccounts(t, db, n)
					pl := open(t, mustNew(t, def), db, `{"plan":"gold"}`)
					res := run(t, pl, 5, func() {
						// 3 leaves the scope, 4 (trial) enters it, after planning.
						if err := db.Model(&Account{}).Where("id = ?", 3).Update("status", "closed").Error; err != nil {
							t.Fatal(err)
						}
						if err := db.Model(&Account{}).Where("id = ?", 4).Update("status", "active").Error; err != nil {
							t.Fatal(err)
						}
					})
					got := accounts(t, db)
					if got[2].Touched != 0 || got[2].Plan != "free" {
						t.Errorf("account 3 left the scope before its batch ran but was processed: %+v", got[2])
					}
					if got[3].Touched != 1 || got[3].Plan != "gold" {
						t.Errorf("account 4 entered the scope inside a planned range but was not processed: %+v", got[3])
					}
					var inScope int64
					for _, a := range got {
						if a.Status == "active" {
							inScope++
						}
					}
					if res.RowsRead != inScope {
						t.Errorf("read %d rows, want the %d in scope when the batches ran", res.RowsRead, inScope)
					}
				})
			}
		})

		t.Run("a batch processed in a rolled back transaction changes nothing", func(t *testing.T) {
			seedAccounts(t, db, n)
			pl := open(t, mustNew(t, planBackfill(backfills.Options{})), db, `{"plan":"gold"}`)
			hi, _, _, err := pl.Next(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			errCheckpoint := errors.New("checkpoint failed")
			err = db.Transaction(func(tx *gorm.DB) error {
				res, err := pl.Process(ctx, tx, "", hi)
				if err != nil {
					return err
				}
				if res.RowsRead != 10 {
					t.Errorf("read %d, want 10", res.RowsRead)
				}
				return errCheckpoint
			})
			if !errors.Is(err, errCheckpoint) {
				t.Fatal(err)
			}
			if diff := cmp.Diff(expectAccounts(n, "", func(Account) bool { return false }), accounts(t, db)); diff != "" {
				t.Errorf("accounts after rollback (-want +got):\n%s", diff)
			}
		})

		t.Run("a failing batch is an error and changes nothing", func(t *testing.T) {
			seedAccounts(t, db, n)
			boom := errors.New("boom")
			for _, j := range []engine.Job{
				mustNew(t, backfills.Definition[Account, struct{}]{Name: "fail_batch",
					ProcessBatch: func(ctx context.Context, b *backfills.Batch[Account, struct{}]) error {
						if err := b.DB.Model(&Account{}).Where("id IN ?", b.Keys()).Update("touched", 9).Error; err != nil {
							return err
						}
						return boom
					}}),
				mustNew(t, backfills.Definition[Account, struct{}]{Name: "fail_element",
					ProcessElement: func(ctx context.Context, e *backfills.Element[Account, struct{}]) error {
						if err := e.DB.Model(e.Record).Update("touched", 9).Error; err != nil {
							return err
						}
						if e.Record.ID == 3 {
							return boom
						}
						return nil
					}}),
				mustNew(t, backfills.Definition[Account, struct{}]{Name: "fail_range",
					ProcessRange: func(ctx context.Context, r *backfills.Range[Account, struct{}]) error {
						if err := r.Update("touched", 9); err != nil {
							return err
						}
						return boom
					}}),
			} {
				pl := open(t, j, db, "")
				_, err := pl.Process(ctx, nil, "", `[5]`)
				if !errors.Is(err, boom) {
					t.Errorf("%s: Process = %v, want boom", j.Definition().Name, err)
				}
				if j.Definition().Name == "fail_element" && !strings.HasPrefix(err.Error(), "record id=3: ") {
					// The key finds the record in the table; its place in
					// the batch would not.
					t.Errorf("fail_element: error %q does not name the record by its key (record id=3: …)", err)
				}
				for _, a := range accounts(t, db) {
					if a.Touched != 0 {
						t.Errorf("%s: account %d changed by a failed batch", j.Definition().Name, a.ID)
					}
				}
			}
		})
	})
}

func TestBatchCounts(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		const n = 30
		for _, tc := range []struct {
			name string
			fn   func(b *backfills.Batch[Account, struct{}]) error
			want func(records int64) store.Result
		}{
			{"no report: every record written", func(b *backfills.Batch[Account, struct{}]) error { return nil },
				func(r int64) store.Result { return store.Result{RowsRead: r, RowsWritten: r} }},
			{"Wrote rows affected", func(b *backfills.Batch[Account, struct{}]) error {
				res := b.DB.Model(&Account{}).Where("id IN ? AND credits > ?", b.Keys(), 3).Update("touched", 1)
				b.Wrote(res.RowsAffected)
				return res.Error
			}, func(r int64) store.Result {
				var w int64
				for id := int64(1); id <= n; id++ {
					if id%7 > 3 {
						w++
					}
				}
				return store.Result{RowsRead: r, RowsWritten: w}
			}},
			// Redelivered: the update finds nothing left to change.
			{"Wrote(0)", func(b *backfills.Batch[Account, struct{}]) error { b.Wrote(0); return nil },
				func(r int64) store.Result { return store.Result{RowsRead: r} }},
			{"Wrote more than read", func(b *backfills.Batch[Account, struct{}]) error { b.Wrote(int64(2 * len(b.Records))); return nil },
				func(r int64) store.Result { return store.Result{RowsRead: r, RowsWritten: 2 * r} }},
			{"Skipped without Wrote", func(b *backfills.Batch[Account, struct{}]) error { b.Skipped(1); return nil },
				func(r int64) store.Result { return store.Result{RowsRead: r, RowsWritten: r - 6, RowsSkipped: 6} }},
			{"Wrote and Skipped", func(b *backfills.Batch[Account, struct{}]) error {
				b.Wrote(2)
				b.Wrote(1)
				b.Skipped(int64(len(b.Records) - 3))
				return nil
			}, func(r int64) store.Result { return store.Result{RowsRead: r, RowsWritten: 18, RowsSkipped: r - 18} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				seedAccounts(t, db, n)
				j := mustNew(t, backfills.Definition[Account, struct{}]{
					Name:         "counts",
					ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, struct{}]) error { return tc.fn(b) },
				})
				res := run(t, open(t, j, db, "{}"), 5, nil)
				if diff := cmp.Diff(tc.want(n), res); diff != "" {
					t.Errorf("results of 6 batches (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestKeys(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		codes := []string{"b", "a", "Z", "c-1", "c-10", "c-2", "é", "aa"}
		for _, c := range codes {
			if err := db.Create(&Tag{Code: c}).Error; err != nil {
				t.Fatal(err)
			}
		}
		for i := int64(20); i >= 1; i-- {
			if err := db.Create(&LogLine{Seq: i * 100}).Error; err != nil {
				t.Fatal(err)
			}
		}

		t.Run("string primary key", func(t *testing.T) {
			var seen []any
			j := mustNew(t, backfills.Definition[Tag, struct{}]{Name: "tags",
				ProcessBatch: func(ctx context.Context, b *backfills.Batch[Tag, struct{}]) error {
					seen = append(seen, b.Keys()...)
					return b.DB.Model(&Tag{}).Where("code IN ?", b.Keys()).Update("touched", gorm.Expr("touched + 1")).Error
				}})
			res := run(t, open(t, j, db, ""), 3, nil)
			if res.RowsRead != int64(len(codes)) {
				t.Errorf("read %d tags, want %d", res.RowsRead, len(codes))
			}
			want := []any{"Z", "a", "aa", "b", "c-1", "c-10", "c-2", "é"}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("keys in order (-want +got):\n%s", diff)
			}
			var touched []int
			db.Model(&Tag{}).Order("code").Pluck("touched", &touched)
			for i, n := range touched {
				if n != 1 {
					t.Errorf("tag %d touched %d times", i, n)
				}
			}
		})

		t.Run("model without primary key needs Key", func(t *testing.T) {
			var keysSeen int
			j := mustNew(t, backfills.Definition[LogLine, struct{}]{Name: "lines", Key: []string{"seq"},
				ProcessElement: func(ctx context.Context, e *backfills.Element[LogLine, struct{}]) error {
					keysSeen++
					return e.DB.Model(&LogLine{}).Where("seq = ?", e.Record.Seq).Update("touched", gorm.Expr("touched + 1")).Error
				}})
			res := run(t, open(t, j, db, ""), 6, nil)
			if res.RowsRead != 20 || res.RowsWritten != 20 || keysSeen != 20 {
				t.Errorf("results %+v after %d records, want 20 read and written", res, keysSeen)
			}
			var total int64
			db.Model(&LogLine{}).Select("SUM(touched)").Scan(&total)
			if total != 20 {
				t.Errorf("lines touched %d times in all, want 20", total)
			}

			noKey := mustNew(t, backfills.Definition[LogLine, struct{}]{Name: "lines_no_key",
				ProcessElement: func(ctx context.Context, e *backfills.Element[LogLine, struct{}]) error { return nil }})
			if _, err := noKey.Open(ctx, engine.Env{DB: db}, nil); err == nil || !strings.Contains(err.Error(), "primary key") {
				t.Errorf("Open of a backfill over a model without primary key and no Key: %v", err)
			}
		})
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.OpenDB(context.Background(), testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	j := mustNew(t, planBackfill(backfills.Options{}))
	ctx := context.Background()
	if _, err := j.Open(ctx, engine.Env{}, json.RawMessage(`{"plan":"x"}`)); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("Open without a database: %v", err)
	}
	for raw, field := range map[string]string{
		`{}`:                                "plan",
		`{"plan":"x","nope":1}`:             "nope",
		`{"plan":"x","status":"old"}`:       "status",
		`{"plan":"x","min_credits":"many"}`: "min_credits",
	} {
		_, err := j.Open(ctx, engine.Env{DB: db}, json.RawMessage(raw))
		var pe *params.Error
		if !errors.As(err, &pe) || pe.Field != field {
			t.Errorf("Open(%s): %v, want a params error on %s", raw, err, field)
		}
	}
	pl := open(t, j, db, `{"plan":"x"}`)
	if _, err := pl.Process(ctx, nil, "[", ""); err == nil {
		t.Error("Process with a malformed lo: no error")
	}
	if _, err := pl.Process(ctx, nil, "", "nope"); err == nil {
		t.Error("Process with a malformed hi: no error")
	}
	if pl.Incremental() || pl.WritesTo() != db {
		t.Errorf("a backfill pipeline is incremental (%v) or writes elsewhere", pl.Incremental())
	}
}

// TestParamsReachTheBatch: the params of the run's JSON are decoded once
// and every batch sees them.
func TestParamsReachTheBatch(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		type P struct {
			Since time.Time     `json:"since" required:"true"`
			Grace time.Duration `json:"grace" default:"90s"`
			Label string        `json:"label" default:"none"`
			Limit uint          `json:"limit"`
		}
		seedAccounts(t, db, 12)
		var got []P
		j := mustNew(t, backfills.Definition[Account, P]{Name: "params",
			ProcessBatch: func(ctx context.Context, b *backfills.Batch[Account, P]) error {
				got = append(got, b.Params)
				return nil
			}})
		run(t, open(t, j, db, `{"since":"2026-01-02T03:04:05+01:00","limit":"7"}`), 5, nil)
		want := P{Since: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC), Grace: 90 * time.Second, Label: "none", Limit: 7}
		if len(got) != 3 {
			t.Fatalf("%d batches, want 3", len(got))
		}
		for i, p := range got {
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("batch %d params (-want +got):\n%s", i, diff)
			}
		}
	})
}

func TestRangeStatements(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		const n = 40
		ctx := context.Background()
		t.Run("delete", func(t *testing.T) {
			seedAccounts(t, db, n)
			pl := open(t, mustNew(t, backfills.Definition[Account, struct{}]{Name: "drop_closed",
				Scope:        func(db *gorm.DB, _ struct{}) *gorm.DB { return db.Where("status = ?", "closed") },
				ProcessRange: func(ctx context.Context, r *backfills.Range[Account, struct{}]) error { return r.Delete() },
			}), db, "")
			res := run(t, pl, 3, nil)
			var closed, left int64
			for _, a := range expectAccounts(n, "", func(Account) bool { return false }) {
				if a.Status == "closed" {
					closed++
				}
			}
			if err := db.Model(&Account{}).Count(&left).Error; err != nil {
				t.Fatal(err)
			}
			if want := (store.Result{RowsRead: closed, RowsWritten: closed}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
			if left != n-closed {
				t.Errorf("%d accounts left, want the %d not closed", left, n-closed)
			}
		})
		t.Run("own statement counted with Wrote and Skipped", func(t *testing.T) {
			seedAccounts(t, db, n)
			pl := open(t, mustNew(t, backfills.Definition[Account, struct{}]{Name: "own_statement",
				ProcessRange: func(ctx context.Context, r *backfills.Range[Account, struct{}]) error {
					var ids []int64
					if err := r.Query().Pluck("id", &ids).Error; err != nil {
						return err
					}
					res := r.Query().Where("credits > ?", 3).Update("touched", gorm.Expr("touched + 1"))
					if res.Error != nil {
						return res.Error
					}
					r.Wrote(res.RowsAffected)
					r.Skipped(int64(len(ids)) - res.RowsAffected)
					return nil
				},
			}), db, "")
			// Planned before, processed after: the range's query sees the
			// rows as they are when the batch runs, and only those in range.
			hi, _, _, err := pl.Next(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			res, err := pl.Process(ctx, nil, "", hi)
			if err != nil {
				t.Fatal(err)
			}
			var touched int64
			for _, a := range accounts(t, db) {
				if a.Touched > 1 || (a.Touched == 1) != (a.ID <= 10 && a.Credits > 3) {
					t.Errorf("account %+v touched %d times", a, a.Touched)
				}
				touched += int64(a.Touched)
			}
			if want := (store.Result{RowsRead: 10, RowsWritten: touched, RowsSkipped: 10 - touched}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	})
}
