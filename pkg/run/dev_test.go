package run_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/run"
)

func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }

// syncBuffer is a bytes.Buffer safe for DevWith's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recordingDemo is shopDemo (example_test.go) that remembers what dev mode
// asked of it.
type recordingDemo struct {
	shopDemo
	mu       sync.Mutex
	migrated int
	seeded   []int
}

func (d *recordingDemo) Migrate(ctx context.Context, db *gorm.DB) error {
	d.mu.Lock()
	d.migrated++
	d.mu.Unlock()
	return d.shopDemo.Migrate(ctx, db)
}

func (d *recordingDemo) Seed(ctx context.Context, db *gorm.DB, n int) error {
	d.mu.Lock()
	d.seeded = append(d.seeded, n)
	d.mu.Unlock()
	return d.shopDemo.Seed(ctx, db, n)
}

// Dev mode migrates and seeds the demo the main passes — once: a second
// start finds the rows and loads none — and runs until its context ends.
func TestDevWithSeedsTheGivenDemoOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts scheduler, worker and web")
	}
	t.Setenv("DRIPFLOW_REDIS_URL", "")
	t.Setenv("DRIPFLOW_DATABASE_URL", "")
	t.Setenv("DRIPFLOW_METRICS_ADDR", "off")
	dir := t.TempDir()
	demo := &recordingDemo{}
	opts := &run.DevOptions{Demo: demo, Registry: engine.NewRegistry()}

	for start := 1; start <= 2; start++ {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run.DevWith(ctx, []string{"--http-addr", "127.0.0.1:0", "--data-dir", dir, "--seed-rows", "25", "--log-level", "error"}, out, opts)
		}()
		deadline := time.After(30 * time.Second)
		for !strings.Contains(out.String(), "dripflow dev is running") {
			select {
			case err := <-done:
				cancel()
				t.Fatalf("start %d: DevWith returned early: %v\n%s", start, err, out)
			case <-deadline:
				cancel()
				t.Fatalf("start %d: not running after 30s:\n%s", start, out)
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("start %d: DevWith: %v", start, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("start %d: DevWith did not stop 30s after its context ended", start)
		}
	}
	demo.mu.Lock()
	defer demo.mu.Unlock()
	if demo.migrated != 2 || len(demo.seeded) != 1 || demo.seeded[0] != 25 {
		t.Errorf("demo migrated %d times and seeded %v; want 2 migrations and one seed of 25 rows", demo.migrated, demo.seeded)
	}
}
