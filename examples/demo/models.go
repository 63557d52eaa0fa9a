package demo

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// User is the demo table users.
type User struct {
	ID            int64   `gorm:"primaryKey"`
	Email         string  `gorm:"size:320;not null"`
	EmailVerified bool    `gorm:"not null;default:false"`
	Role          *string `gorm:"size:32"`
	// Active marks the users that user_sync copies.
	Active    bool      `gorm:"not null;default:true"`
	CreatedAt time.Time `gorm:"not null"`
	UpdatedAt time.Time `gorm:"not null"`
}

// UserBackup is the demo table user_backups, user_sync's sink.
type UserBackup struct {
	UserID        int64     `gorm:"primaryKey;autoIncrement:false"`
	Email         string    `gorm:"size:320;not null"`
	EmailVerified bool      `gorm:"not null"`
	Role          *string   `gorm:"size:32"`
	UserUpdatedAt time.Time `gorm:"not null"`
	SyncedAt      time.Time `gorm:"not null"`
}

// Migrate creates the demo tables.
func Migrate(ctx context.Context, db *gorm.DB) error {
	if err := db.WithContext(ctx).AutoMigrate(&User{}, &UserBackup{}); err != nil {
		return fmt.Errorf("migrate demo tables: %w", err)
	}
	// The incremental cursor (updated_at, id) needs both columns in its index.
	m := db.WithContext(ctx).Migrator()
	if !m.HasIndex(&User{}, "idx_users_updated_at_id_full") {
		if err := db.WithContext(ctx).Exec("CREATE INDEX idx_users_updated_at_id_full ON users (updated_at, id)").Error; err != nil {
			return fmt.Errorf("index users(updated_at, id): %w", err)
		}
	}
	return nil
}
