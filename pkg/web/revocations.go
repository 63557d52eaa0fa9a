package web

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// revocations remembers the sessions ended at logout until they would
// have expired anyway.
type revocations interface {
	revoke(ctx context.Context, id string, until time.Time) error
	revoked(ctx context.Context, id string) (bool, error)
}

// redisRevocations keeps revoked session ids in Redis, so a logout holds
// on every web process that shares the session key.
type redisRevocations struct {
	rdb    redis.UniversalClient
	prefix string
}

func (r *redisRevocations) revoke(ctx context.Context, id string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	return r.rdb.Set(ctx, r.prefix+id, "1", ttl+time.Second).Err()
}

func (r *redisRevocations) revoked(ctx context.Context, id string) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.prefix+id).Result()
	return n > 0, err
}

// memRevocations is the list of a handler without Redis (embedders, tests).
type memRevocations struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

func newMemRevocations() *memRevocations { return &memRevocations{ids: map[string]time.Time{}} }

func (m *memRevocations) revoke(_ context.Context, id string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for k, t := range m.ids {
		if now.After(t) {
			delete(m.ids, k)
		}
	}
	m.ids[id] = until
	return nil
}

func (m *memRevocations) revoked(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.ids[id]
	return ok && time.Now().Before(t), nil
}
