package worker

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// fakeStore satisfies store.Store; validation never calls it.
type fakeStore struct{ store.Store }

func TestConfigWithDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	got := Config{Store: fakeStore{}, Redis: rdb}.WithDefaults()
	if got.Registry != engine.DefaultRegistry || got.Events == nil || got.Queue == "" || got.Concurrency <= 0 ||
		got.PollInterval != PollIntervalDefault || got.ShutdownTimeout != ShutdownTimeoutDefault ||
		got.ClaimLease != ClaimLeaseDefault || got.ID == "" || got.Logger == nil {
		t.Errorf("WithDefaults() = %+v, want every default set", got)
	}
	set := Config{Queue: "q", Concurrency: 3, PollInterval: time.Second, ShutdownTimeout: time.Minute, ClaimLease: time.Hour, ID: "w1"}.WithDefaults()
	if set.Queue != "q" || set.Concurrency != 3 || set.PollInterval != time.Second || set.ShutdownTimeout != time.Minute ||
		set.ClaimLease != time.Hour || set.ID != "w1" {
		t.Errorf("WithDefaults changed set fields: %+v", set)
	}
	if neg := (Config{ClaimLease: -time.Second}).WithDefaults(); neg.ClaimLease != -time.Second {
		t.Errorf("WithDefaults replaced a negative ClaimLease with %s; it is for validate to reject", neg.ClaimLease)
	}
}

func TestConfigValidate(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, tt := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Store: fakeStore{}, Redis: rdb}, ""},
		{"no store", Config{Redis: rdb}, "Store and Redis are required"},
		{"no redis", Config{Store: fakeStore{}}, "Store and Redis are required"},
		{"negative concurrency", Config{Store: fakeStore{}, Redis: rdb, Concurrency: -1}, "Concurrency must not be negative"},
		{"negative poll interval", Config{Store: fakeStore{}, Redis: rdb, PollInterval: -1}, "PollInterval must not be negative"},
		{"negative shutdown timeout", Config{Store: fakeStore{}, Redis: rdb, ShutdownTimeout: -time.Second}, "ShutdownTimeout must not be negative"},
		{"negative claim lease", Config{Store: fakeStore{}, Redis: rdb, ClaimLease: -time.Minute}, "ClaimLease must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
