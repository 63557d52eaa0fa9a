package scheduler

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// elector holds the leader lease: one Redis key holding the leader's token
// with a TTL that the leader keeps renewing. Whoever holds it plans; the
// others wait and try again every ttl/5.
type elector struct {
	rdb   redis.UniversalClient
	key   string
	id    string // the scheduler's id, for logs
	token string // unique per process start
	ttl   time.Duration
	log   *zap.Logger
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

// run competes for the lease until ctx ends. Each time it takes the lease
// it calls lead with a context that ends when the lease is lost (or ctx
// ends), and gives the lease up when lead returns.
func (e *elector) run(ctx context.Context, lead func(context.Context)) {
	for {
		ok, err := e.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("acquire leader lease", zap.Error(err))
		}
		if ok {
			e.log.Info("leading", zap.String("scheduler", e.id))
			e.hold(ctx, lead)
			e.log.Info("no longer leading", zap.String("scheduler", e.id))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.ttl / 5):
		}
	}
}

// hold runs lead while it keeps the lease, then releases it.
func (e *elector) hold(ctx context.Context, lead func(context.Context)) {
	defer e.release(context.WithoutCancel(ctx))
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel() // the lease is lost: lead stops
		e.keep(lctx)
	}()
	defer func() { cancel(); <-done }()
	lead(lctx)
}

// keep renews the lease every ttl/3 until ctx ends or the lease is lost: the
// renewal said another holds it, or renewals failed for 2/3 of the TTL (it
// may have expired meanwhile).
func (e *elector) keep(ctx context.Context) {
	t := time.NewTicker(e.ttl / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ok, err := e.renew(ctx)
			if ok {
				lastOK = time.Now()
				continue
			}
			if err == nil || time.Since(lastOK) > e.ttl*2/3 {
				e.log.Warn("leader lease lost", zap.Error(err))
				return
			}
		}
	}
}

// acquire takes the lease if nobody holds it.
func (e *elector) acquire(ctx context.Context) (bool, error) {
	return e.rdb.SetNX(ctx, e.key, e.token, e.ttl).Result()
}

// renew extends the lease; false means it was lost.
func (e *elector) renew(ctx context.Context) (bool, error) {
	n, err := renewScript.Run(ctx, e.rdb, []string{e.key}, e.token, e.ttl.Milliseconds()).Int()
	return n == 1, err
}

// release gives the lease up so another scheduler takes over at once.
func (e *elector) release(ctx context.Context) {
	releaseScript.Run(ctx, e.rdb, []string{e.key}, e.token)
}
