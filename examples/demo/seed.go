package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Seed inserts n demo users after the existing ones, in multi-row INSERTs.
// About half have no role; every email is unnormalised (mixed case, padded)
// and unverified; one in ten users is inactive.
func Seed(ctx context.Context, db *gorm.DB, n int) error {
	const chunk = 1000
	var maxID int64
	if err := db.WithContext(ctx).Model(&User{}).Select("COALESCE(MAX(id), 0)").Scan(&maxID).Error; err != nil {
		return fmt.Errorf("seed: read max id: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	admin := "admin"
	for start := 0; start < n; start += chunk {
		size := min(chunk, n-start)
		users := make([]User, size)
		for i := range users {
			id := maxID + int64(start+i) + 1
			u := User{
				ID:        id,
				Email:     fmt.Sprintf("  User%d@Example.COM ", id),
				CreatedAt: now,
				UpdatedAt: now,
			}
			if id%2 == 0 {
				u.Role = &admin
			}
			users[i] = u
		}
		if err := db.WithContext(ctx).Create(&users).Error; err != nil {
			return fmt.Errorf("seed users %d..%d: %w", maxID+int64(start)+1, maxID+int64(start+size), err)
		}
		// gorm writes a field's default in place of its zero value
		// (Active has default:true), so the inactive ones are set after.
		var inactive []int64
		for _, u := range users {
			if u.ID%10 == 0 {
				inactive = append(inactive, u.ID)
			}
		}
		if len(inactive) > 0 {
			if err := db.WithContext(ctx).Model(&User{}).Where("id IN ?", inactive).Update("active", false).Error; err != nil {
				return fmt.Errorf("seed: mark %d users inactive: %w", len(inactive), err)
			}
		}
	}
	return nil
}

// NormalizeEmail is what fix_user_emails does to an address.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
