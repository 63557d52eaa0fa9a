package backfills_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// onEveryDatabase runs fn on each of dialects, with models migrated.
func onEveryDatabase(t *testing.T, models []any, fn func(t *testing.T, db *gorm.DB)) {
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
			if err := db.AutoMigrate(models...); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

// Level is a named string type, as models use for enums.
type Level string

// Audit is embedded in Wide.
type Audit struct {
	Author string
	Rev    int32
}

// Wide has a field of every kind a batch's records are scanned into.
type Wide struct {
	ID      int64 `gorm:"primaryKey;autoIncrement:false"`
	Name    string
	Nick    *string
	Small   int8
	Medium  int32
	Count   uint16
	Big     uint64
	Ratio   float64
	Weight  float32
	On      bool
	Level   Level `gorm:"size:20"`
	Seen    time.Time
	Gone    *time.Time
	Blob    []byte
	Note    sql.NullString
	Hidden  string `gorm:"-"`
	Audit   `gorm:"embedded"`
	Version int
}

// TestRecordsLoadAsGormDoes compares a batch's records with what gorm's Find
// returns for the same rows, NULLs and a column the model does not know
// included.
func TestRecordsLoadAsGormDoes(t *testing.T) {
	t.Parallel()
	onEveryDatabase(t, []any{&Wide{}}, func(t *testing.T, db *gorm.DB) {
		// A column only the table has: the records ignore it.
		if err := db.Exec("ALTER TABLE wides ADD COLUMN extra varchar(10)").Error; err != nil {
			t.Fatal(err)
		}
		seen := time.Date(2026, 12, 2, 10, 11, 12, 123456000, time.UTC)
		for i := int64(1); i <= 25; i++ {
			w := Wide{ID: i, Name: fmt.Sprintf("w%d", i), Small: int8(-i), Medium: int32(i * 1000), Count: uint16(i),
				Big: uint64(i) << 40, Ratio: float64(i) / 4, Weight: float32(i) / 2, On: i%2 == 0, Level: Level("l" + fmt.Sprint(i%3)),
				Seen: seen.Add(time.Duration(i) * time.Hour), Audit: Audit{Author: "a" + fmt.Sprint(i), Rev: int32(i)}, Version: int(i)}
			if i%3 == 0 {
				nick := fmt.Sprintf("n%d", i)
				gone := seen.Add(-time.Duration(i) * time.Minute)
				w.Nick, w.Gone, w.Blob, w.Note = &nick, &gone, []byte{byte(i), 0, 255}, sql.NullString{String: "note", Valid: true}
			}
			if err := db.Create(&w).Error; err != nil {
				t.Fatal(err)
			}
		}
		// NULL in columns whose fields are not pointers: the zero value,
		// as gorm gives it.
		if err := db.Exec("UPDATE wides SET name = NULL, medium = NULL, seen = NULL, level = NULL, extra = 'x' WHERE id = 7").Error; err != nil {
			t.Fatal(err)
		}
		var loaded []Wide
		j := mustNew(t, backfills.Definition[Wide, struct{}]{Name: "wide",
			Scope: func(db *gorm.DB, _ struct{}) *gorm.DB { return db.Where("id <> ?", 5) },
			ProcessBatch: func(_ context.Context, b *backfills.Batch[Wide, struct{}]) error {
				loaded = append(loaded, b.Records...)
				return nil
			}})
		p := open(t, j, db, "")
		res := run(t, p, 10, nil)
		if !backfills.Scanned(p) {
			t.Error("the records were loaded by gorm's Find, not the batch's scanner")
		}
		var want []Wide
		if err := db.Where("id <> ?", 5).Order("id").Find(&want).Error; err != nil {
			t.Fatal(err)
		}
		if res.RowsRead != 24 || len(want) != 24 {
			t.Fatalf("read %d records, gorm finds %d; want 24", res.RowsRead, len(want))
		}
		if diff := cmp.Diff(want, loaded); diff != "" {
			t.Errorf("records (-gorm +batch):\n%s", diff)
		}
		if loaded[5].ID != 7 || loaded[5].Name != "" || loaded[5].Medium != 0 || !loaded[5].Seen.IsZero() {
			t.Errorf("record 7 with NULLs: %+v", loaded[5])
		}
	})
}

// Gadget's rows are saved by a composite primary key, batched by id.
type Gadget struct {
	ID        int64  `gorm:"primaryKey;autoIncrement:false"`
	Region    string `gorm:"primaryKey;size:10"`
	Label     string
	Score     int
	Owner     *string `gorm:"size:20"`
	UpdatedAt time.Time
}

// Subscription's tier is an enum on PostgreSQL.
type Subscription struct {
	ID   int64 `gorm:"primaryKey;autoIncrement:false"`
	Tier string
}

func TestSave(t *testing.T) {
	t.Parallel()
	onEveryDatabase(t, []any{&Account{}, &Tag{}, &Gadget{}}, func(t *testing.T, db *gorm.DB) {
		t.Run("changed fields of changed records", func(t *testing.T) {
			seedAccounts(t, db, 30)
			j := mustNew(t, backfills.Definition[Account, struct{}]{Name: "save_plans",
				ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, struct{}]) error {
					for i := range b.Records {
						a := &b.Records[i]
						a.Status = "not named, not written"
						switch {
						case a.ID%3 == 0:
							a.Plan = "gold"
							a.Credits += 100
						case a.ID%3 == 1:
							a.Credits += 0 // as loaded
						case a.ID%3 == 2:
							a.Plan = "free" // as it was
						}
					}
					return b.Save("Plan", "credits")
				}})
			res := run(t, open(t, j, db, ""), 7, nil)
			if res.RowsRead != 30 || res.RowsWritten != 10 || res.RowsSkipped != 20 {
				t.Errorf("result %+v, want 30 read, 10 written, 20 skipped (left as loaded)", res)
			}
			want := expectAccounts(30, "free", func(Account) bool { return false })
			for i := range want {
				if want[i].ID%3 == 0 {
					want[i].Plan, want[i].Credits = "gold", want[i].Credits+100
				}
			}
			if diff := cmp.Diff(want, accounts(t, db)); diff != "" {
				t.Errorf("accounts (-want +got):\n%s", diff)
			}
			// Run again: nothing differs from what is loaded any more.
			j2 := mustNew(t, backfills.Definition[Account, struct{}]{Name: "save_again",
				ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, struct{}]) error {
					for i := range b.Records {
						if b.Records[i].ID%3 == 0 {
							b.Records[i].Plan = "gold"
						}
					}
					return b.Save("plan")
				}})
			if res := run(t, open(t, j2, db, ""), 7, nil); res.RowsWritten != 0 || res.RowsSkipped != 30 {
				t.Errorf("second run: %+v, want 0 written, 30 skipped", res)
			}
		})

		t.Run("string key, in the batch's transaction", func(t *testing.T) {
			for _, c := range []string{"b", "a", "Z", "c-1", "é", "it's"} {
				if err := db.Create(&Tag{Code: c}).Error; err != nil {
					t.Fatal(err)
				}
			}
			fail := true
			j := mustNew(t, backfills.Definition[Tag, struct{}]{Name: "save_tags",
				ProcessBatch: func(_ context.Context, b *backfills.Batch[Tag, struct{}]) error {
					for i := range b.Records {
						b.Records[i].Touched = len(b.Records[i].Code)
					}
					if err := b.Save("touched"); err != nil {
						return err
					}
					if fail {
						return fmt.Errorf("fails after Save")
					}
					return nil
				}})
			p := open(t, j, db, "")
			if _, err := p.Process(context.Background(), nil, "", `["zz"]`); err == nil {
				t.Fatal("a failing batch succeeded")
			}
			var n int64
			db.Model(&Tag{}).Where("touched <> 0").Count(&n)
			if n != 0 {
				t.Fatalf("%d tags written by a batch that failed: Save must write in its transaction", n)
			}
			fail = false
			res := run(t, p, 4, nil)
			if res.RowsWritten != 6 {
				t.Errorf("wrote %d tags, want 6", res.RowsWritten)
			}
			var tags []Tag
			db.Order("touched, code").Find(&tags)
			for _, tg := range tags {
				if tg.Touched != len(tg.Code) {
					t.Errorf("tag %q: touched %d, want %d", tg.Code, tg.Touched, len(tg.Code))
				}
			}
		})

		t.Run("composite key, NULL, update time", func(t *testing.T) {
			old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := int64(1); i <= 9; i++ {
				for _, r := range []string{"eu", "us"} {
					g := Gadget{ID: i, Region: r, Label: "old", Score: int(i)}
					if i%2 == 0 {
						o := "owner"
						g.Owner = &o
					}
					if err := db.Create(&g).Error; err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := db.Model(&Gadget{}).Where("1 = 1").UpdateColumn("updated_at", old).Error; err != nil {
				t.Fatal(err)
			}
			start := time.Now().Add(-time.Minute)
			j := mustNew(t, backfills.Definition[Gadget, struct{}]{Name: "save_gadgets", Key: []string{"id", "region"},
				ProcessBatch: func(_ context.Context, b *backfills.Batch[Gadget, struct{}]) error {
					for i := range b.Records {
						g := &b.Records[i]
						if g.Region == "eu" {
							g.Label = "new " + g.Region
							g.Score *= 10
							if g.Owner != nil {
								g.Owner = nil
							} else {
								o := fmt.Sprint("o", g.ID)
								g.Owner = &o
							}
						}
					}
					return b.Save("label", "score", "owner")
				}})
			res := run(t, open(t, j, db, ""), 4, nil)
			if res.RowsWritten != 9 || res.RowsSkipped != 9 {
				t.Errorf("result %+v, want 9 gadgets written, 9 skipped", res)
			}
			var got []Gadget
			db.Order("id, region").Find(&got)
			for _, g := range got {
				owner := "<nil>"
				if g.Owner != nil {
					owner = *g.Owner
				}
				if g.Region == "us" {
					if g.Label != "old" || g.Score != int(g.ID) || g.UpdatedAt.After(old) || (g.ID%2 == 0) != (g.Owner != nil) {
						t.Errorf("gadget %d/us changed: %+v owner %s", g.ID, g, owner)
					}
					continue
				}
				wantOwner := "<nil>"
				if g.ID%2 == 1 {
					wantOwner = fmt.Sprint("o", g.ID)
				}
				if g.Label != "new eu" || g.Score != int(g.ID)*10 || owner != wantOwner || g.UpdatedAt.Before(start) {
					t.Errorf("gadget %d/eu: %+v owner %s; want label \"new eu\", score %d, owner %s, updated now", g.ID, g, owner, g.ID*10, wantOwner)
				}
			}
		})

		t.Run("column of a type of the database's own", func(t *testing.T) {
			// On PostgreSQL an enum: Save sends a VALUES list cast to it
			// rather than arrays.
			stmts := []string{"CREATE TABLE subscriptions (id bigint PRIMARY KEY, tier varchar(10) NOT NULL)"}
			if db.Dialector.Name() == "postgres" {
				stmts = []string{
					"CREATE TYPE tier AS ENUM ('free', 'gold')",
					"CREATE TABLE subscriptions (id bigint PRIMARY KEY, tier tier NOT NULL)",
				}
			}
			stmts = append(stmts, "INSERT INTO subscriptions (id, tier) VALUES (1, 'free'), (2, 'free'), (3, 'free'), (4, 'free'), (5, 'free')")
			for _, stmt := range stmts {
				if err := db.Exec(stmt).Error; err != nil {
					t.Fatal(err)
				}
			}
			j := mustNew(t, backfills.Definition[Subscription, struct{}]{Name: "save_tier",
				ProcessBatch: func(_ context.Context, b *backfills.Batch[Subscription, struct{}]) error {
					for i := range b.Records {
						if b.Records[i].ID != 3 {
							b.Records[i].Tier = "gold"
						}
					}
					return b.Save("tier")
				}})
			if res := run(t, open(t, j, db, ""), 2, nil); res.RowsWritten != 4 || res.RowsSkipped != 1 {
				t.Errorf("result %+v, want 4 written, 1 skipped", res)
			}
			var subs []Subscription
			if err := db.Order("id").Find(&subs).Error; err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range subs {
				got = append(got, fmt.Sprintf("%d:%s", s.ID, s.Tier))
			}
			if diff := cmp.Diff([]string{"1:gold", "2:gold", "3:free", "4:gold", "5:gold"}, got); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
		})

		t.Run("refused", func(t *testing.T) {
			seedAccounts(t, db, 4)
			for _, tc := range []struct {
				name string
				fn   func(b *backfills.Batch[Account, struct{}]) error
				want string
			}{
				{"no fields", func(b *backfills.Batch[Account, struct{}]) error { return b.Save() }, "name the fields"},
				{"unknown field", func(b *backfills.Batch[Account, struct{}]) error { return b.Save("plan", "colour") }, `"colour" is not a column of Account`},
				{"the key", func(b *backfills.Batch[Account, struct{}]) error { return b.Save("ID") }, `"ID" is the key`},
				{"reordered", func(b *backfills.Batch[Account, struct{}]) error {
					b.Records[0], b.Records[1] = b.Records[1], b.Records[0]
					b.Records[0].Plan = "gold"
					return b.Save("plan")
				}, "in their order"},
				{"dropped", func(b *backfills.Batch[Account, struct{}]) error {
					b.Records = b.Records[1:]
					return b.Save("plan")
				}, "3 records, 4 were loaded"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					j := mustNew(t, backfills.Definition[Account, struct{}]{Name: "refused",
						ProcessBatch: func(_ context.Context, b *backfills.Batch[Account, struct{}]) error { return tc.fn(b) }})
					_, err := open(t, j, db, "").Process(context.Background(), nil, "", "[4]")
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Errorf("Process: %v, want an error saying %q", err, tc.want)
					}
					if diff := cmp.Diff(expectAccounts(4, "free", func(Account) bool { return false }), accounts(t, db)); diff != "" {
						t.Errorf("accounts changed (-want +got):\n%s", diff)
					}
				})
			}
		})
	})
}

// Profile's tags are stored as JSON by gorm's serializer, and AfterFind
// counts its loads: its records are loaded by gorm's Find.
type Profile struct {
	ID    int64    `gorm:"primaryKey;autoIncrement:false"`
	Tags  []string `gorm:"serializer:json"`
	Found int      `gorm:"-"`
}

// AfterFind implements gorm's hook.
func (p *Profile) AfterFind(*gorm.DB) error { p.Found++; return nil }

func TestRecordsGormLoads(t *testing.T) {
	t.Parallel()
	onEveryDatabase(t, []any{&Profile{}}, func(t *testing.T, db *gorm.DB) {
		for i := int64(1); i <= 5; i++ {
			if err := db.Create(&Profile{ID: i, Tags: []string{fmt.Sprint("t", i)}}).Error; err != nil {
				t.Fatal(err)
			}
		}
		j := mustNew(t, backfills.Definition[Profile, struct{}]{Name: "tag_profiles",
			ProcessBatch: func(_ context.Context, b *backfills.Batch[Profile, struct{}]) error {
				for i := range b.Records {
					if b.Records[i].Found != 1 {
						return fmt.Errorf("record %d: AfterFind ran %d times, want 1", b.Records[i].ID, b.Records[i].Found)
					}
					if b.Records[i].ID%2 == 1 {
						b.Records[i].Tags = append(b.Records[i].Tags[:1:1], "odd")
					}
				}
				return b.Save("tags")
			}})
		p := open(t, j, db, "")
		res := run(t, p, 2, nil)
		if backfills.Scanned(p) {
			t.Error("records with a serializer and AfterFind were not loaded by gorm")
		}
		if res.RowsWritten != 3 || res.RowsSkipped != 2 {
			t.Errorf("result %+v, want 3 written, 2 skipped", res)
		}
		var got []Profile
		if err := db.Order("id").Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		for _, pr := range got {
			want := []string{fmt.Sprint("t", pr.ID)}
			if pr.ID%2 == 1 {
				want = append(want, "odd")
			}
			if diff := cmp.Diff(want, pr.Tags); diff != "" {
				t.Errorf("profile %d tags (-want +got):\n%s", pr.ID, diff)
			}
		}
	})
}
