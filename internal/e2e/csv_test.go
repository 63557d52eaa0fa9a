package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/examples"
	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// TestCSVRowsAppliedOnceInProcess: a run of a CSV backfill applies every
// row of its CSV exactly once — each batch's first attempt fails after
// its update and is retried, on a SQL store sharing the data's database
// (write and checkpoint in one transaction) — and touches nothing else;
// the run's total is the CSV's row count. A bad CSV creates no run.
func TestCSVRowsAppliedOnceInProcess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := sqlstore.Migrate(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.New(ctx, e.db, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.ctl = &control.Controller{Store: st, Events: e.bus}
	if err := e2edefs.Migrate(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	const items = 2000
	var rows []e2edefs.Item
	for id := int64(1); id <= items; id++ {
		rows = append(rows, e2edefs.Item{ID: id, UpdatedAt: time.Now()})
	}
	if err := e.db.CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
	// Every third item, in a scattered order: 667 rows.
	var csv strings.Builder
	csv.WriteString("id\n")
	var listed []int64
	for i := int64(0); i < items; i++ {
		id := (i*7)%items + 1
		if id%3 == 0 {
			listed = append(listed, id)
			fmt.Fprintf(&csv, "%d\n", id)
		}
	}
	e.start(2)

	raw, _ := json.Marshal(map[string]any{"items": csv.String(), "fail_first": true})
	r, err := e.ctl.CreateRun(ctx, control.NewRun{Definition: "e2e_csv_bump", Params: raw, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitRun(r.ID, 2*time.Minute)
	if done.State != store.RunSucceeded {
		t.Fatalf("run ended %s: %s", done.State, done.Error)
	}
	n := int64(len(listed))
	wantBatches := (n + 49) / 50
	if done.Total != n || done.RowsRead != n || done.RowsWritten != n || done.BatchesSucceeded != wantBatches {
		t.Fatalf("run: total %d, counters %+v; want %d rows in %d batches", done.Total, done.Counters, n, wantBatches)
	}
	var wrong []string
	var got []e2edefs.Item
	if err := e.db.Order("id").Find(&got).Error; err != nil {
		t.Fatal(err)
	}
	for _, it := range got {
		want := 0
		if it.ID%3 == 0 {
			want = 1
		}
		if it.Counter != want {
			wrong = append(wrong, fmt.Sprintf("item %d bumped %d times, want %d", it.ID, it.Counter, want))
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("%d items wrong, first: %s", len(wrong), wrong[0])
	}
	bs, err := st.ListBatches(ctx, r.ID, store.BatchFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs.Items {
		if b.Attempts != 2 {
			t.Fatalf("batch %d took %d attempts, want 2 (the first fails on purpose)", b.Seq, b.Attempts)
		}
	}

	// A ragged CSV is refused when the run is created, naming the line.
	before, _ := st.ListRuns(ctx, store.RunFilter{})
	_, err = e.ctl.CreateRun(ctx, control.NewRun{Definition: "e2e_csv_bump", Params: json.RawMessage(`{"items":"id\n1\n2,3\n"}`), CreatedBy: "test"})
	var pe *params.Error
	if !errors.As(err, &pe) || pe.Field != "items" || !strings.Contains(pe.Message, "line 3 has 2 fields") {
		t.Fatalf("ragged CSV: %v", err)
	}
	after, _ := st.ListRuns(ctx, store.RunFilter{})
	if len(after.Items) != len(before.Items) {
		t.Fatalf("a refused CSV created a run: %d runs, then %d", len(before.Items), len(after.Items))
	}
}

// TestImportUserEmailsInProcess: the example import_user_emails sets the
// emails its CSV gives and skips rows of users that do not exist.
func TestImportUserEmailsInProcess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := examples.Seed(ctx, e.db, 300); err != nil {
		t.Fatal(err)
	}
	e.start(1)
	text := "id,email\n5,New.Five@Example.org\n250, two50@example.org \n99999,ghost@example.org\n"
	raw, _ := json.Marshal(map[string]string{"emails": text})
	bs := 2
	r, err := e.ctl.CreateRun(ctx, control.NewRun{Definition: "import_user_emails", Params: raw, CreatedBy: "test", BatchSize: &bs})
	if err != nil {
		t.Fatal(err)
	}
	done := e.waitRun(r.ID, time.Minute)
	if done.State != store.RunSucceeded || done.Total != 3 || done.RowsWritten != 2 || done.RowsSkipped != 1 || done.BatchesSucceeded != 2 {
		t.Fatalf("run %s (%s): total %d, %+v", done.State, done.Error, done.Total, done.Counters)
	}
	for id, want := range map[int64]string{5: "new.five@example.org", 250: "two50@example.org", 6: "  User6@Example.COM "} {
		var u examples.User
		if err := e.db.First(&u, id).Error; err != nil {
			t.Fatal(err)
		}
		if u.Email != want {
			t.Errorf("user %d: email %q, want %q", id, u.Email, want)
		}
	}
}
