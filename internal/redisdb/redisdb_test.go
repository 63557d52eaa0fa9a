package redisdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisdb"
	"github.com/dripflow/dripflow/internal/testenv"
)

func TestReserveGivesDistinctEmptyDatabasesAndReleaseFreesThem(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	base := testenv.RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := redisdb.Reserve(ctx, base, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := redisdb.Reserve(ctx, base, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a.DB == b.DB || a.URL == b.URL {
		t.Fatalf("two reservations share database %d (%s, %s)", a.DB, a.URL, b.URL)
	}
	if err := a.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("a key of database %d is seen in database %d: %d, %v", a.DB, b.DB, n, err)
	}

	opts, _ := redis.ParseURL(base)
	opts.DB = 0
	admin := redis.NewClient(opts)
	defer admin.Close()
	key := fmt.Sprintf("dripflow:test:redisdb:%d", b.DB)
	if err := b.Release(); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if n, _ := admin.Exists(ctx, key).Result(); n != 0 {
		t.Errorf("released database %d is still reserved", b.DB)
	}
}
