package run

import (
	"context"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
)

// Demo is example data that goes with a set of example definitions: dev
// mode creates its tables and loads it into an empty database, `migrate
// --demo` creates its tables and Seed loads it. dripflow's own command
// passes the demo of package examples/demo; an application passes its own,
// or none.
type Demo interface {
	// Migrate creates the demo tables; running it twice changes nothing.
	Migrate(ctx context.Context, db *gorm.DB) error
	// Rows counts the demo rows already loaded; dev mode seeds only when
	// there are none.
	Rows(ctx context.Context, db *gorm.DB) (int64, error)
	// Seed inserts n demo rows.
	Seed(ctx context.Context, db *gorm.DB, n int) error
}

// DevOptions are the options of DevWith and MigrateWith. A nil
// *DevOptions means the zero value.
type DevOptions struct {
	// Demo, when set, is migrated and seeded (--seed-rows) by dev mode and
	// created by `migrate --demo`. Nil: no demo data and no --demo flag.
	Demo Demo
	// Registry holds the definitions dev mode runs; default
	// engine.DefaultRegistry (the definitions the main's imports register).
	Registry *engine.Registry
}

func (o *DevOptions) orZero() DevOptions {
	if o == nil {
		return DevOptions{}
	}
	return *o
}

func (o DevOptions) registry() *engine.Registry {
	if o.Registry == nil {
		return engine.DefaultRegistry
	}
	return o.Registry
}
