package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := redisstore.Open(ctx, testenv.RedisURL(t), redisstore.Config{Prefix: testenv.Name("dft:") + ":"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Open created the client, so Close closed it.
	if err := s.Ping(ctx); err == nil {
		t.Fatalf("Ping after Close: no error")
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	tests := []struct {
		url  string
		want string // in the error
	}{
		{"", "empty"},
		{"http://127.0.0.1:6379", "unknown scheme"},
		{"127.0.0.1:6379", "URL"},
		{"redis://127.0.0.1:6379/notadb", "invalid database number"},
		{"redis://user:s3cret@127.0.0.1:6379/x", "xxxxx"}, // the password is redacted
		{"redis://user:s3cret@127.0.0.1:badport/0", "malformed URL"},
		{"rediss://user:s3cret@[::1/0", "malformed URL"},
		{"redis://127.0.0.1:1/0", "open redis store at 127.0.0.1:1"},
		{"redis-sentinel://:s3cret@127.0.0.1:1/mymaster", `primary "mymaster" via sentinels 127.0.0.1:1`},
		{"redis-cluster://:s3cret@127.0.0.1:1,127.0.0.1:2", "cannot run on a Redis Cluster"},
	}
	for _, tt := range tests {
		s, err := redisstore.Open(context.Background(), tt.url, redisstore.Config{})
		t.Logf("Open(%q): %v", tt.url, err)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", tt.url)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q): error %q, want it to mention %q", tt.url, err, tt.want)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q): error %q shows the password", tt.url, err)
		}
	}
}

func TestNewRefusesUnsupportedClients(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Config{}); err == nil {
		t.Errorf("New(nil): no error")
	}
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cluster.Close()
	if _, err := redisstore.New(cluster, redisstore.Config{}); err == nil || !errors.Is(err, redisstore.ErrCluster) {
		t.Errorf("New(cluster client): %v, want a refusal", err)
	}
}

func TestCloseLeavesCallersClientOpen(t *testing.T) {
	client, prefix := testenv.Redis(t)
	s, err := redisstore.New(client, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the caller's client was closed: %v", err)
	}
}

func TestPrefixesAreIsolated(t *testing.T) {
	ctx := context.Background()
	client, prefix := testenv.Redis(t)
	a, err := redisstore.New(client, redisstore.Config{Prefix: prefix + "a:"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := redisstore.New(client, redisstore.Config{Prefix: prefix + "b:"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := a.CreateRun(ctx, store.NewRun{Definition: "d", Kind: store.KindBackfill, CreatedBy: "alice", Options: opts()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpsertDefinition(ctx, store.Definition{Name: "f", Kind: store.KindFlow}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetRun(ctx, run.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store b sees run %d of store a: %v", run.ID, err)
	}
	for _, f := range []store.RunFilter{{}, {Definition: "d"}, {CreatedBy: "alice"}, {States: []store.RunState{store.RunScheduled}}} {
		p, err := b.ListRuns(ctx, f)
		if err != nil || len(p.Items) != 0 {
			t.Errorf("store b lists %d runs for %+v (%v), want none", len(p.Items), f, err)
		}
	}
	if defs, err := b.ListDefinitions(ctx); err != nil || len(defs) != 0 {
		t.Errorf("store b lists definitions %v (%v)", defs, err)
	}
	if _, err := b.GetFlow(ctx, "f"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store b sees flow f: %v", err)
	}
	// Ids are per prefix: b's first run does not collide with a's.
	first, err := b.CreateRun(ctx, store.NewRun{Definition: "other", Kind: store.KindBackfill, Options: opts()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetRun(ctx, run.ID); err != nil || got.Definition != "d" {
		t.Errorf("store a's run %d after b created run %d: %+v, %v", run.ID, first.ID, got, err)
	}
}
