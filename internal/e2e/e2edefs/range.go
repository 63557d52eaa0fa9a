package e2edefs

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
)

// BumpRange is e2e_bump in the ProcessRange form: one UPDATE … SET counter
// = counter + 1 over the batch's key range, no record loaded. Like
// e2e_bump it is not idempotent, so a batch applied twice shows as a row
// at 2. It ignores Poison.
var BumpRange = backfills.MustRegister(backfills.Definition[Item, BumpParams]{
	Name:        "e2e_bump_range",
	Description: "Increment counter of every item in one UPDATE per batch.",
	ProcessRange: func(ctx context.Context, r *backfills.Range[Item, BumpParams]) error {
		if r.Params.SleepMS > 0 {
			select {
			case <-time.After(time.Duration(r.Params.SleepMS) * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return r.Update("counter", gorm.Expr("counter + 1"))
	},
})
