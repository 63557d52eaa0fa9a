package redisstream

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisurl"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "redisstream"

// DefaultConnection is the connection a config without one uses: the
// process's DRIPFLOW_REDIS_URL.
const DefaultConnection = "redis"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "Redis streams: read entries by id (optionally through a consumer group), append entries deduplicated by message id",
		Delivery:    "idempotent: a message id is appended once while its dedupe key lives (dedupe_ttl, 24h)",
		Source:      func() flows.SourceConfig { return &Source{} },
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// client returns the process's client for the named connection, opened and
// pinged on first use and shared by every flow that names it.
func client(ctx context.Context, res *engine.Resources, name string) (*redis.Client, error) {
	if name == "" {
		name = DefaultConnection
	}
	raw, err := res.URL(name)
	if err != nil {
		return nil, err
	}
	v, err := res.Shared("redis:"+name, func() (any, func() error, error) {
		opts, err := redisurl.Parse(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("connection %q: %w", name, redact(err, raw))
		}
		// A stream and its dedupe keys are touched by one script: the
		// connector needs one primary (standalone or through Sentinel).
		if opts.Kind == redisurl.Cluster {
			return nil, nil, fmt.Errorf("connection %q is a Redis Cluster (%s): the redisstream connector needs one primary; name a redis:// or redis-sentinel:// connection", name, opts)
		}
		c := opts.NewClient().(*redis.Client)
		if err := c.Ping(ctx).Err(); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("connect to Redis %q (%s): %w", name, opts.Where(), err)
		}
		return c, c.Close, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*redis.Client), nil
}

func redact(err error, raw string) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), raw, "<url>"))
}

var entryID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// checkPosition refuses a position that is not an entry id ("" is the
// beginning).
func checkPosition(p string) error {
	if p != "" && !entryID.MatchString(p) {
		return fmt.Errorf("position %q is not a stream entry id (ms-seq)", p)
	}
	return nil
}
