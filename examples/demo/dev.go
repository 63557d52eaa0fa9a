package demo

import (
	"context"

	"gorm.io/gorm"
)

// Dev is the demo as dripflow's dev mode, `migrate --demo` and `seed` use it
// (a run.Demo): the tables users and user_backups, seeded with users.
var Dev DevDemo

// DevDemo implements run.Demo with this package's schema and seeder.
type DevDemo struct{}

// Migrate creates users and user_backups.
func (DevDemo) Migrate(ctx context.Context, db *gorm.DB) error { return Migrate(ctx, db) }

// Rows counts the users.
func (DevDemo) Rows(ctx context.Context, db *gorm.DB) (int64, error) {
	var n int64
	err := db.WithContext(ctx).Model(&User{}).Count(&n).Error
	return n, err
}

// Seed inserts n users.
func (DevDemo) Seed(ctx context.Context, db *gorm.DB, n int) error { return Seed(ctx, db, n) }
