// Package dbtx holds the transaction helper that job pipelines share:
// engine.Pipeline.Process gets the worker's open transaction when the
// batch's checkpoint commits with the data, and nil when the job must open
// its own.
package dbtx

import (
	"context"

	"gorm.io/gorm"
)

// Within runs fn in tx when tx is not nil; otherwise it runs fn in a
// transaction of its own on db, committed when fn returns no error and
// rolled back when it does. A pipeline's Process is
//
//	return dbtx.Within(ctx, p.db, tx, func(tx *gorm.DB) (store.Result, error) {
//		return p.process(ctx, tx, lo, hi)
//	})
func Within[T any](ctx context.Context, db, tx *gorm.DB, fn func(tx *gorm.DB) (T, error)) (T, error) {
	if tx != nil {
		return fn(tx)
	}
	var out T
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}
