// Package sqlres opens the SQL databases a process's resources name: the
// application database, or a named connection (DRIPFLOW_CONNECTIONS), one
// pool per name per process, shared by everything that asks for it (the
// SQL connectors and the database health checks).
package sqlres

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// IsDefault reports whether name means the application database.
func IsDefault(name string) bool { return name == "" || name == engine.DefaultConnection }

// Open returns the gorm handle of the named connection: the application
// database for "" and "default", else the pool of that name, opened on
// first use and closed with res.
func Open(ctx context.Context, res *engine.Resources, name string) (*gorm.DB, error) {
	if IsDefault(name) {
		if db := res.DB(); db != nil {
			return db, nil
		}
		if _, err := res.URL(engine.DefaultConnection); err != nil {
			return nil, fmt.Errorf("connection %q: this process has no application database (DRIPFLOW_DATABASE_URL)", engine.DefaultConnection)
		}
		name = engine.DefaultConnection
	}
	url, err := res.URL(name)
	if err != nil {
		return nil, err
	}
	v, err := res.Shared("sql:"+name, func() (any, func() error, error) {
		db, err := sqlstore.OpenDB(ctx, url, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("open connection %q: %w", name, err)
		}
		return db, func() error {
			sqlDB, err := db.DB()
			if err != nil {
				return err
			}
			return sqlDB.Close()
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*gorm.DB), nil
}
