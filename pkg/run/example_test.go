package run_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/run"
)

// A worker's main: import the package that registers your definitions (for
// its side effect), then run until SIGTERM, which drains running batches.
// The scheduler's and the web server's mains are the same with run.Scheduler
// and run.Web.
func ExampleWorker() {
	// import _ "example.com/app/backfills" // registers the definitions
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run.Worker(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// shopDemo is an application's demo data for dev mode: its tables and a
// seeder (a run.Demo).
type shopDemo struct{}

type product struct {
	ID   int64 `gorm:"primaryKey"`
	Name string
}

func (shopDemo) Migrate(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).AutoMigrate(&product{})
}

func (shopDemo) Rows(ctx context.Context, db *gorm.DB) (n int64, err error) {
	err = db.WithContext(ctx).Model(&product{}).Count(&n).Error
	return n, err
}

func (shopDemo) Seed(ctx context.Context, db *gorm.DB, n int) error {
	ps := make([]product, n)
	for i := range ps {
		ps[i].Name = fmt.Sprintf("product %d", i+1)
	}
	return db.WithContext(ctx).CreateInBatches(ps, 1000).Error
}

// A dev main with demo data: scheduler, worker and web in one process, the
// demo's tables created and, when empty, loaded with --seed-rows rows.
// Without a demo, run.Dev(ctx, args, out) does the same with no data.
func ExampleDevWith() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run.DevWith(ctx, os.Args[1:], os.Stdout, &run.DevOptions{Demo: shopDemo{}}); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

// Seed refuses to run in a program without demo data.
func ExampleSeed() {
	err := run.Seed(context.Background(), []string{"--database-url", "sqlite://unused.db"}, os.Stdout, nil)
	fmt.Println(err)
	// Output:
	// seed: this program has no demo data
}

var _ run.Demo = shopDemo{}
