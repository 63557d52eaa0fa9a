package scheduler

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// leader is a lease in Redis: one key holding the leader's token with a TTL
// that the leader keeps renewing. Whoever holds it plans; the others wait.
type leader struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
}

var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// acquire takes the lease if nobody holds it.
func (l *leader) acquire(ctx context.Context) (bool, error) {
	return l.rdb.SetNX(ctx, l.key, l.token, l.ttl).Result()
}

// renew extends the lease; false means it was lost.
func (l *leader) renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

// release gives the lease up so another scheduler takes over at once.
func (l *leader) release(ctx context.Context) {
	releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token)
}
