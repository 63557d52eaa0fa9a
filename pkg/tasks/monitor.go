package tasks

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/dripflow/dripflow/internal/redisurl"
)

// MonitorOptions configure the embedded asynqmon.
type MonitorOptions struct {
	// RedisURL is the queue's Redis, in any form DRIPFLOW_REDIS_URL takes
	// (redis://, rediss://, redis-sentinel://…, redis-cluster://…).
	RedisURL string
	// RootPath is where the handler is mounted, e.g. "/monitoring".
	RootPath string
	// ReadOnly hides every action (delete, run, archive, pause queue).
	ReadOnly bool
	// PrometheusAddress, when set, lets asynqmon draw queue metrics charts.
	PrometheusAddress string
}

// MonitorHandler is asynqmon's web UI. Close closes the Redis connections it
// opened.
type MonitorHandler interface {
	http.Handler
	io.Closer
}

// Monitor returns asynqmon's web UI for the queue; close it when done.
func Monitor(o MonitorOptions) (MonitorHandler, error) {
	opts, err := redisurl.Parse(o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return asynqmon.New(asynqmon.Options{
		RootPath:          strings.TrimSuffix(o.RootPath, "/"),
		RedisConnOpt:      RedisConnOpt(opts),
		ReadOnly:          o.ReadOnly,
		PrometheusAddress: o.PrometheusAddress,
	}), nil
}

// RedisConnOpt is asynq's connection option for a parsed DRIPFLOW_REDIS_URL:
// its MakeRedisClient returns the same client the rest of the process uses
// (redisurl.Options.NewClient: a failover client that follows Sentinel's
// primary, or a cluster client), so asynq, asynqmon and dripflow read one URL
// the same way, with every go-redis option and the sentinels' own user, which
// asynq's RedisFailoverClientOpt has no field for.
func RedisConnOpt(o *redisurl.Options) asynq.RedisConnOpt { return connOpt{o} }

type connOpt struct{ o *redisurl.Options }

// MakeRedisClient returns a new redis.UniversalClient (asynq's contract).
func (c connOpt) MakeRedisClient() any { return c.o.NewClient() }
