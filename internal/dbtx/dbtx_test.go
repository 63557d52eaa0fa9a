package dbtx_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/dbtx"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

type item struct {
	ID int64 `gorm:"primaryKey"`
}

func TestWithin(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.OpenDB(ctx, testenv.SQLiteURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := db.AutoMigrate(&item{}); err != nil {
		t.Fatal(err)
	}
	count := func() (n int64) {
		t.Helper()
		if err := db.Model(&item{}).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Without a transaction: its own, committed on success…
	n, err := dbtx.Within(ctx, db, nil, func(tx *gorm.DB) (int64, error) {
		return 1, tx.Create(&item{ID: 1}).Error
	})
	if err != nil || n != 1 || count() != 1 {
		t.Fatalf("own transaction: %d, %v, %d rows; want 1, nil, 1 row", n, err, count())
	}
	// …and rolled back on error.
	boom := errors.New("boom")
	if _, err := dbtx.Within(ctx, db, nil, func(tx *gorm.DB) (int64, error) {
		if err := tx.Create(&item{ID: 2}).Error; err != nil {
			return 0, err
		}
		return 0, boom
	}); !errors.Is(err, boom) || count() != 1 {
		t.Fatalf("failed own transaction: %v, %d rows; want boom and 1 row", err, count())
	}
	// With the caller's transaction: fn runs in it, and the caller decides.
	err = db.Transaction(func(outer *gorm.DB) error {
		_, err := dbtx.Within(ctx, db, outer, func(tx *gorm.DB) (int64, error) {
			if tx != outer {
				t.Error("fn did not get the caller's transaction")
			}
			return 0, tx.Create(&item{ID: 3}).Error
		})
		if err != nil {
			return err
		}
		return boom // roll the caller's transaction back
	})
	if !errors.Is(err, boom) || count() != 1 {
		t.Fatalf("caller's transaction: %v, %d rows; want boom and 1 row (rolled back by the caller)", err, count())
	}
}
