package tasks

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// MonitorOptions configure the embedded asynqmon.
type MonitorOptions struct {
	// RedisURL is the queue's Redis (redis:// or rediss://).
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
	opt, err := asynq.ParseRedisURI(o.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("monitor: Redis URL: %w", err)
	}
	return asynqmon.New(asynqmon.Options{
		RootPath:          strings.TrimSuffix(o.RootPath, "/"),
		RedisConnOpt:      opt,
		ReadOnly:          o.ReadOnly,
		PrometheusAddress: o.PrometheusAddress,
	}), nil
}
