package backfills_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Member is the model of the examples: the table members.
type Member struct {
	ID    int64 `gorm:"primaryKey"`
	Email string
	Role  *string
}

// RoleParams are the params of the role backfills.
type RoleParams struct {
	Role string `json:"role" default:"member" enum:"member,admin"`
}

// A backfill with ProcessBatch gets each batch's records at once and writes
// through b.DB, the transaction the batch's checkpoint commits in.
func ExampleDefinition_processBatch() {
	def := backfills.Definition[Member, RoleParams]{
		Name:  "add_default_role",
		Scope: func(db *gorm.DB, p RoleParams) *gorm.DB { return db.Where("role IS NULL") },
		ProcessBatch: func(ctx context.Context, b *backfills.Batch[Member, RoleParams]) error {
			return b.DB.Model(&Member{}).Where("id IN ?", b.Keys()).Update("role", b.Params.Role).Error
		},
		Options: backfills.Options{BatchSize: 2},
	}
	// An application registers it once, in a package-level var:
	//
	//	var AddDefaultRole = backfills.MustRegister(def)
	//
	// Here it is compiled and run the way a worker runs it, batch by batch.
	job, err := backfills.New(def)
	if err != nil {
		fmt.Println(err)
		return
	}
	db, done := exampleDB()
	defer done()
	runExample(db, job, `{"role":"admin"}`)
	printMembers(db)
	// Output:
	// batch 1: read 2, written 2, skipped 0
	// batch 2: read 2, written 2, skipped 0
	// 1 Ada@Example.com admin
	// 2 bob@example.com admin
	// 3 cy@example.com owner
	// 4 Dee@example.com admin
	// 5 eve@example.com admin
}

// Batch.Save writes the records a ProcessBatch changed back in one
// statement per batch; records left as they were loaded are not written.
func ExampleBatch_Save() {
	job, err := backfills.New(backfills.Definition[Member, struct{}]{
		Name: "lowercase_emails_in_batches",
		ProcessBatch: func(ctx context.Context, b *backfills.Batch[Member, struct{}]) error {
			for i := range b.Records {
				b.Records[i].Email = strings.ToLower(b.Records[i].Email)
			}
			return b.Save("email")
		},
		Options: backfills.Options{BatchSize: 3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	db, done := exampleDB()
	defer done()
	runExample(db, job, `{}`)
	printMembers(db)
	// Output:
	// batch 1: read 3, written 1, skipped 2
	// batch 2: read 2, written 1, skipped 1
	// 1 ada@example.com -
	// 2 bob@example.com -
	// 3 cy@example.com owner
	// 4 dee@example.com -
	// 5 eve@example.com -
}

// A backfill with ProcessElement gets one record at a time; returning
// backfills.ErrSkip counts the record as skipped instead of written.
func ExampleDefinition_processElement() {
	job, err := backfills.New(backfills.Definition[Member, struct{}]{
		Name: "lowercase_emails",
		ProcessElement: func(ctx context.Context, e *backfills.Element[Member, struct{}]) error {
			lower := strings.ToLower(e.Record.Email)
			if lower == e.Record.Email {
				return backfills.ErrSkip
			}
			return e.DB.Model(e.Record).Update("email", lower).Error
		},
		Options: backfills.Options{BatchSize: 3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	db, done := exampleDB()
	defer done()
	runExample(db, job, `{}`)
	printMembers(db)
	// Output:
	// batch 1: read 3, written 1, skipped 2
	// batch 2: read 2, written 1, skipped 1
	// 1 ada@example.com -
	// 2 bob@example.com -
	// 3 cy@example.com owner
	// 4 dee@example.com -
	// 5 eve@example.com -
}

// A backfill with ProcessRange loads no record: r.Update changes the scope's
// records in the batch's key range in one UPDATE, and the rows it changed
// count as written.
func ExampleDefinition_processRange() {
	job, err := backfills.New(backfills.Definition[Member, RoleParams]{
		Name:  "add_default_role_in_place",
		Scope: func(db *gorm.DB, p RoleParams) *gorm.DB { return db.Where("role IS NULL") },
		ProcessRange: func(ctx context.Context, r *backfills.Range[Member, RoleParams]) error {
			return r.Update("role", r.Params.Role)
		},
		Options: backfills.Options{BatchSize: 3},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	db, done := exampleDB()
	defer done()
	runExample(db, job, `{}`) // the role param defaults to "member"
	printMembers(db)
	// Output:
	// batch 1: read 3, written 3, skipped 0
	// batch 2: read 1, written 1, skipped 0
	// 1 Ada@Example.com member
	// 2 bob@example.com member
	// 3 cy@example.com owner
	// 4 Dee@example.com member
	// 5 eve@example.com member
}

// A definition must set exactly one of ProcessBatch, ProcessElement and
// ProcessRange; registration says which are set.
func ExampleNew_errors() {
	_, err := backfills.New(backfills.Definition[Member, struct{}]{Name: "nothing_to_do"})
	fmt.Println(err)
	_, err = backfills.New(backfills.Definition[Member, struct{}]{
		Name:           "two_ways",
		ProcessBatch:   func(context.Context, *backfills.Batch[Member, struct{}]) error { return nil },
		ProcessElement: func(context.Context, *backfills.Element[Member, struct{}]) error { return nil },
	})
	fmt.Println(err)
	// Params are checked against the params struct when a run is created.
	job, err := backfills.New(backfills.Definition[Member, RoleParams]{
		Name:         "set_role",
		ProcessRange: func(context.Context, *backfills.Range[Member, RoleParams]) error { return nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = job.CanonicalParams(json.RawMessage(`{"role":"root"}`))
	fmt.Println(err)
	// Output:
	// backfill "nothing_to_do": set exactly one of ProcessBatch, ProcessElement or ProcessRange (none is set)
	// backfill "two_ways": set exactly one of ProcessBatch, ProcessElement or ProcessRange (ProcessBatch and ProcessElement are set)
	// invalid param role: must be one of member, admin
}

// exampleDB returns a SQLite database in a temporary file with five members,
// one of whom already has a role, and a function that removes it.
func exampleDB() (*gorm.DB, func()) {
	dir, err := os.MkdirTemp("", "backfills-example")
	if err != nil {
		panic(err)
	}
	db, err := sqlstore.OpenDB(context.Background(), "sqlite://"+filepath.Join(dir, "example.db"), 0)
	if err != nil {
		panic(err)
	}
	owner := "owner"
	if err := db.AutoMigrate(&Member{}); err != nil {
		panic(err)
	}
	if err := db.Create([]Member{
		{ID: 1, Email: "Ada@Example.com"}, {ID: 2, Email: "bob@example.com"}, {ID: 3, Email: "cy@example.com", Role: &owner},
		{ID: 4, Email: "Dee@example.com"}, {ID: 5, Email: "eve@example.com"},
	}).Error; err != nil {
		panic(err)
	}
	return db, func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		os.RemoveAll(dir)
	}
}

// runExample runs the job over db as a worker would: it plans batches of the
// definition's batch size with Next and processes each in a transaction of
// its own (a worker commits the batch's checkpoint in it, too).
func runExample(db *gorm.DB, job engine.Job, params string) {
	ctx := context.Background()
	canonical, err := job.CanonicalParams(json.RawMessage(params))
	if err != nil {
		panic(err)
	}
	p, err := job.Open(ctx, engine.Env{DB: db}, canonical)
	if err != nil {
		panic(err)
	}
	// Plan every batch first, as the scheduler does, then process them.
	type span struct{ lo, hi string }
	var spans []span
	for lo := p.Start(""); ; {
		hi, _, ok, err := p.Next(ctx, lo, job.Defaults().BatchSize)
		if err != nil {
			panic(err)
		}
		if !ok {
			break
		}
		spans = append(spans, span{lo, hi})
		lo = hi
	}
	for i, s := range spans {
		var res store.Result
		err := db.Transaction(func(tx *gorm.DB) error {
			var err error
			res, err = p.Process(ctx, tx, s.lo, s.hi)
			return err
		})
		if err != nil {
			panic(err)
		}
		fmt.Printf("batch %d: read %d, written %d, skipped %d\n", i+1, res.RowsRead, res.RowsWritten, res.RowsSkipped)
	}
}

func printMembers(db *gorm.DB) {
	var ms []Member
	if err := db.Order("id").Find(&ms).Error; err != nil {
		panic(err)
	}
	for _, m := range ms {
		role := "-"
		if m.Role != nil {
			role = *m.Role
		}
		fmt.Println(m.ID, m.Email, role)
	}
}
