package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Migrate brings the SQL store's schema in DRIPFLOW_DATABASE_URL up to date.
// Running it twice changes nothing.
func Migrate(ctx context.Context, args []string, out io.Writer) error {
	return MigrateWith(ctx, args, out, nil)
}

// MigrateWith is Migrate with options: when opts has a Demo, the --demo flag
// also creates the demo tables.
func MigrateWith(ctx context.Context, args []string, out io.Writer, opts *DevOptions) error {
	o := opts.orZero()
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "database URL (DRIPFLOW_DATABASE_URL)")
	withDemo := new(bool)
	if o.Demo != nil {
		fs.BoolVar(withDemo, "demo", false, "also create the demo tables")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("set DRIPFLOW_DATABASE_URL or --database-url")
	}
	if err := sqlstore.MigrateURL(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	fmt.Fprintf(out, "store schema is at version %d\n", sqlstore.SchemaVersion)
	if *withDemo {
		db, err := sqlstore.OpenDB(ctx, cfg.DatabaseURL, 2)
		if err != nil {
			return err
		}
		defer closeGorm(db)
		if err := o.Demo.Migrate(ctx, db); err != nil {
			return err
		}
		fmt.Fprintln(out, "demo tables are ready")
	}
	return nil
}

// Seed inserts demo rows (--rows, default 100000) into
// DRIPFLOW_DATABASE_URL, creating the demo tables if needed.
func Seed(ctx context.Context, args []string, out io.Writer, demo Demo) error {
	if demo == nil {
		return errors.New("seed: this program has no demo data")
	}
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "database URL (DRIPFLOW_DATABASE_URL)")
	rows := fs.Int("rows", 100000, "how many demo rows to insert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("set DRIPFLOW_DATABASE_URL or --database-url")
	}
	if *rows < 0 {
		return fmt.Errorf("--rows must not be negative, got %d", *rows)
	}
	db, err := sqlstore.OpenDB(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer closeGorm(db)
	if err := demo.Migrate(ctx, db); err != nil {
		return err
	}
	if err := demo.Seed(ctx, db, *rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "inserted %d demo rows\n", *rows)
	return nil
}
