package redisstore_test

import (
	"testing"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/storetest"
)

// newStore returns a store on the test Redis under a prefix of its own.
func newStore(t *testing.T, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	client, prefix := testenv.Redis(t)
	if cfg.Prefix == "" {
		cfg.Prefix = prefix
	}
	s, err := redisstore.New(client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, redisstore.Config{})
	})
}
