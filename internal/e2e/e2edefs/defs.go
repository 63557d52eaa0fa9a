// Package e2edefs holds the definitions the process tests run: a backfill
// that counts how often each row was processed (so "exactly once" can be
// checked), can be slowed down, and fails on poisoned rows; and a flow that
// copies the same table incrementally every second.
package e2edefs

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/backfills"
	"github.com/dripflow/dripflow/pkg/connectors/sqlconn"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Item is a row the tests change.
type Item struct {
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Counter   int   `gorm:"not null;default:0"`
	Poison    bool  `gorm:"not null;default:false"`
	Val       string
	UpdatedAt time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Item) TableName() string { return "e2e_items" }

// Copy is e2e_sync's sink row.
type Copy struct {
	ItemID        int64 `gorm:"primaryKey;autoIncrement:false"`
	Val           string
	ItemUpdatedAt time.Time `gorm:"not null"`
}

// TableName implements gorm's Tabler.
func (Copy) TableName() string { return "e2e_copies" }

// Migrate creates the tables.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&Item{}, &Copy{}, &LedgerRow{}); err != nil {
		return err
	}
	return db.WithContext(ctx).Exec("CREATE INDEX IF NOT EXISTS e2e_items_updated_at_id ON e2e_items (updated_at, id)").Error
}

// BumpParams slow the backfill down.
type BumpParams struct {
	SleepMS int `json:"sleep_ms" help:"sleep per batch"`
	// SleepUSPerKey makes a batch's time proportional to its size (e2e_bump
	// only), as the adaptive batch size's test needs.
	SleepUSPerKey int `json:"sleep_us_per_key" help:"sleep per record of the batch, in microseconds"`
}

// Bump increments every row's counter.
var Bump = backfills.MustRegister(backfills.Definition[Item, BumpParams]{
	Name:        "e2e_bump",
	Description: "Increment counter of every item; fail on poisoned ones.",
	ProcessBatch: func(ctx context.Context, b *backfills.Batch[Item, BumpParams]) error {
		for _, it := range b.Records {
			if it.Poison && it.Val == "panic" {
				panic(fmt.Sprintf("panicking on row %d", it.ID))
			}
			if it.Poison {
				return fmt.Errorf("poison row %d", it.ID)
			}
		}
		if sleep := time.Duration(b.Params.SleepMS)*time.Millisecond + time.Duration(b.Params.SleepUSPerKey*len(b.Records))*time.Microsecond; sleep > 0 {
			select {
			case <-time.After(sleep):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return b.DB.Model(&Item{}).Where("id IN ?", b.Keys()).Update("counter", gorm.Expr("counter + 1")).Error
	},
})

// Sync copies items to e2e_copies every second, incrementally.
var Sync = flows.MustRegister(flows.Flow{
	Name: "e2e_sync",
	Source: &sqlconn.Source{
		Table: "e2e_items", Columns: []string{"id", "val", "updated_at"},
		Cursor: []string{"updated_at", "id"},
	},
	Transforms: []flows.Transform{flows.Map("to_copy", func(r flows.Record) (flows.Record, error) {
		return flows.Record{"item_id": r["id"], "val": r["val"], "item_updated_at": r["updated_at"]}, nil
	})},
	Sink:    &sqlconn.Sink{Table: "e2e_copies", Mode: sqlconn.Upsert, Key: []string{"item_id"}},
	Runtime: flows.Heartbeat{Interval: time.Second},
	Options: flows.Options{BatchSize: 500},
})
