package backfills_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/params"
)

type creditParams struct {
	Credits params.CSV `json:"credits" required:"true" headers:"id,add"`
}

func creditBackfill(fail func(first int) error) backfills.CSVDefinition[creditParams] {
	return backfills.CSVDefinition[creditParams]{
		Name: "add_credits",
		CSV:  func(p creditParams) params.CSV { return p.Credits },
		ProcessRows: func(ctx context.Context, r *backfills.Rows[creditParams]) error {
			for _, rec := range r.Records {
				add, _ := strconv.Atoi(rec["add"])
				if add == 0 {
					r.Skipped(1)
					continue
				}
				if err := r.DB.Model(&Account{}).Where("id = ?", rec["id"]).
					Update("credits", gorm.Expr("credits + ?", add)).Error; err != nil {
					return err
				}
			}
			if fail != nil {
				return fail(r.First)
			}
			return nil
		},
	}
}

// TestCSVBackfill: rows 1..N are planned in batches of the run's size,
// counted exactly, and each batch gets its rows; a batch that fails leaves
// nothing of its rows behind.
func TestCSVBackfill(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *gorm.DB) {
		seedAccounts(t, db, 20)
		var csv strings.Builder
		csv.WriteString("id,add\n")
		for id := 20; id >= 1; id-- { // rows in another order than the table
			add := id % 4 // every fourth row adds nothing: skipped
			csv.WriteString(strconv.Itoa(id) + "," + strconv.Itoa(add) + "\n")
		}
		raw, _ := json.Marshal(map[string]string{"credits": csv.String()})
		before := map[int64]int{}
		for _, a := range accounts(t, db) {
			before[a.ID] = a.Credits
		}
		j, err := backfills.NewCSV(creditBackfill(nil))
		if err != nil {
			t.Fatal(err)
		}
		p := open(t, j, db, string(raw))
		if n, est, err := p.Count(context.Background()); n != 20 || est || err != nil {
			t.Fatalf("Count = %d, %v, %v", n, est, err)
		}
		res := run(t, p, 6, nil) // 4 batches: 6, 6, 6, 2 rows
		if res.RowsRead != 20 || res.RowsSkipped != 5 || res.RowsWritten != 15 {
			t.Fatalf("result %+v", res)
		}
		for _, a := range accounts(t, db) {
			if want := before[a.ID] + int(a.ID%4); a.Credits != want {
				t.Errorf("account %d has %d credits, want %d", a.ID, a.Credits, want)
			}
		}

		// A batch failing after its updates rolls them back.
		failing, err := backfills.NewCSV(creditBackfill(func(first int) error {
			if first == 7 {
				return errors.New("boom")
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		fp := open(t, failing, db, string(raw))
		mid := accounts(t, db)
		if _, err := fp.Process(context.Background(), nil, "[6]", "[12]"); err == nil || err.Error() != "boom" {
			t.Fatalf("failing batch: %v", err)
		}
		for i, a := range accounts(t, db) {
			if a.Credits != mid[i].Credits {
				t.Errorf("account %d changed by a failed batch: %d → %d", a.ID, mid[i].Credits, a.Credits)
			}
		}
		if _, err := fp.Process(context.Background(), nil, "[18]", "[21]"); err == nil || !strings.Contains(err.Error(), "not in the CSV's 20 rows") {
			t.Errorf("a range past the CSV: %v", err)
		}
	})
}

func TestNewCSVValidation(t *testing.T) {
	good := creditBackfill(nil)
	noCSV := good
	noCSV.CSV = nil
	noRows := good
	noRows.ProcessRows = nil
	for name, tt := range map[string]struct {
		err  error
		want string
	}{
		"no CSV":         {func() error { _, err := backfills.NewCSV(noCSV); return err }(), "CSV, the params' CSV field, is required"},
		"no ProcessRows": {func() error { _, err := backfills.NewCSV(noRows); return err }(), "ProcessRows is required"},
		"no CSV param": {func() error {
			_, err := backfills.NewCSV(backfills.CSVDefinition[struct{}]{Name: "x", CSV: func(struct{}) params.CSV { return params.CSV{} },
				ProcessRows: func(context.Context, *backfills.Rows[struct{}]) error { return nil }})
			return err
		}(), "need a required params.CSV field"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, tt.err, tt.want)
		}
	}
}
