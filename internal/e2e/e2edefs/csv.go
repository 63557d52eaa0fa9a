package e2edefs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/params"
)

// CSVBumpParams name the items to bump, one id per CSV row.
type CSVBumpParams struct {
	Items params.CSV `json:"items" required:"true" headers:"id" help:"one item id per row"`
	// FailFirst makes every batch's first attempt fail after its update, so
	// the retry must find the update rolled back.
	FailFirst bool `json:"fail_first"`
}

// failedOnce holds the batches (run params are the same for one run; the
// first row's number keys the batch) whose first attempt failed.
var failedOnce sync.Map

// CSVBump increments the counter of the item each CSV row names: not
// idempotent, so a row applied twice shows.
var CSVBump = backfills.MustRegisterCSV(backfills.CSVDefinition[CSVBumpParams]{
	Name:        "e2e_csv_bump",
	Description: "Increment counter of the item each CSV row names.",
	CSV:         func(p CSVBumpParams) params.CSV { return p.Items },
	ProcessRows: func(ctx context.Context, r *backfills.Rows[CSVBumpParams]) error {
		ids := make([]int64, 0, len(r.Records))
		for i, rec := range r.Records {
			id, err := strconv.ParseInt(rec["id"], 10, 64)
			if err != nil {
				return fmt.Errorf("row %d: %w", r.First+i, err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if err := r.DB.Model(&Item{}).Where("id = ?", id).Update("counter", gorm.Expr("counter + 1")).Error; err != nil {
				return err
			}
		}
		if r.Params.FailFirst {
			key := fmt.Sprint(r.Params.Items.Len(), "/", r.First)
			if _, seen := failedOnce.LoadOrStore(key, true); !seen {
				return errors.New("first attempt fails after its update")
			}
		}
		return nil
	},
	Options: backfills.Options{BatchSize: 50, MaxAttempts: 3},
})
