package run

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dripflow/dripflow/examples/demo"
	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// Migrate brings the SQL store's schema in DRIPFLOW_DATABASE_URL up to date;
// with --demo it also creates the example tables (users, user_backups).
// Running it twice changes nothing.
func Migrate(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "database URL (DRIPFLOW_DATABASE_URL)")
	withDemo := fs.Bool("demo", false, "also create the example tables users and user_backups")
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
		if err := demo.Migrate(ctx, db); err != nil {
			return err
		}
		fmt.Fprintln(out, "example tables are ready")
	}
	return nil
}

// Seed inserts demo users (--rows, default 100000) into
// DRIPFLOW_DATABASE_URL, creating the example tables if needed.
func Seed(ctx context.Context, args []string, out io.Writer) error {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.StringVar(&cfg.DatabaseURL, "database-url", cfg.DatabaseURL, "database URL (DRIPFLOW_DATABASE_URL)")
	rows := fs.Int("rows", 100000, "how many demo users to insert")
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
	fmt.Fprintf(out, "inserted %d demo users\n", *rows)
	return nil
}
