package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/store/storetest"
)

// dialects maps each dialect to a function making a throwaway database URL.
var dialects = []struct {
	name string
	url  func(testing.TB) string
}{
	{"postgres", testenv.PostgresURL},
	{"mysql", testenv.MySQLURL},
	{"sqlite", testenv.SQLiteURL},
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openStore migrates the database at url and opens a store on it, closed
// when the test ends.
func openStore(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	ctx := testCtx(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatalf("MigrateURL: %v", err)
	}
	s, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				return openStore(t, d.url(t))
			})
		})
	}
}
