package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// fakeStore satisfies store.Store; validation never calls it.
type fakeStore struct{ store.Store }

func TestConfigWithDefaults(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	got := Config{Store: fakeStore{}, Redis: rdb}.WithDefaults()
	if got.Registry != engine.DefaultRegistry || got.Events == nil || got.PollInterval != PollIntervalDefault ||
		got.ReconcileInterval != ReconcileIntervalDefault || got.ReconcileGrace != ReconcileGraceDefault ||
		got.LeaderKey != LeaderKeyDefault || got.LeaderTTL != LeaderTTLDefault || got.ID == "" || got.Logger == nil {
		t.Errorf("WithDefaults() = %+v, want every default set", got)
	}
	set := Config{PollInterval: 2 * time.Second, ReconcileInterval: time.Minute, ReconcileGrace: time.Hour, LeaderKey: "k", LeaderTTL: time.Second, ID: "s1"}.WithDefaults()
	if set.PollInterval != 2*time.Second || set.ReconcileInterval != time.Minute || set.ReconcileGrace != time.Hour ||
		set.LeaderKey != "k" || set.LeaderTTL != time.Second || set.ID != "s1" {
		t.Errorf("WithDefaults changed set fields: %+v", set)
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
		{"negative poll interval", Config{Store: fakeStore{}, Redis: rdb, PollInterval: -time.Second}, "PollInterval must not be negative"},
		{"negative reconcile interval", Config{Store: fakeStore{}, Redis: rdb, ReconcileInterval: -1}, "ReconcileInterval must not be negative"},
		{"negative reconcile grace", Config{Store: fakeStore{}, Redis: rdb, ReconcileGrace: -1}, "ReconcileGrace must not be negative"},
		{"negative leader ttl", Config{Store: fakeStore{}, Redis: rdb, LeaderTTL: -time.Second}, "LeaderTTL must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.WithDefaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// A negative duration in the queue client's config is an error too.
func TestNewRejectsNegativeTaskRetention(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	_, err := New(Config{Store: fakeStore{}, Redis: rdb, Tasks: tasks.Config{Retention: -time.Second}})
	if err == nil || !strings.Contains(err.Error(), "Retention must not be negative") {
		t.Fatalf("New error = %v, want the negative retention named", err)
	}
}
