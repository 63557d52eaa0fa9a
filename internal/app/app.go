// Package app wires a dripflow process from its configuration: logger, Redis,
// the store, the application database, events and the tasks client.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/internal/redisurl"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// App is an opened process environment.
type App struct {
	Config config.Config
	Log    *zap.Logger
	Redis  redis.UniversalClient
	Store  store.Store
	// DB is the application database jobs read and write. With the SQL
	// store it is the store's own handle, so checkpoints commit in the
	// same transaction as the data.
	DB     *gorm.DB
	Events *events.Bus
	// Resources are the named connections (DRIPFLOW_CONNECTIONS) and the
	// clients flows' connectors open from them, shared in the process.
	Resources *engine.Resources
	// Tracer is the process's OpenTelemetry TracerProvider once
	// StartTracing turned tracing on; nil (tracing off) by default.
	Tracer trace.TracerProvider

	closers []func() error
}

// Open connects everything cfg names. The SQL store's schema must be
// migrated (`dripflow migrate`).
func Open(ctx context.Context, cfg config.Config, log *zap.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log}
	opts, err := redisurl.Parse(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("DRIPFLOW_REDIS_URL: %w", redactErr(err, cfg.RedisURL))
	}
	// One client for the queue, the leader lease, events, presence and
	// the Redis store: a failover client follows Sentinel's primary, a
	// cluster client routes each key to its node.
	rdb := opts.NewClient()
	a.Redis = rdb
	a.closers = append(a.closers, rdb.Close)
	if err := rdb.Ping(ctx).Err(); err != nil {
		a.Close()
		return nil, fmt.Errorf("connect to Redis (%s): %w", opts.Where(), err)
	}
	dbURL := withIdleTxTimeout(cfg.DatabaseURL, cfg.ClaimLease)
	switch cfg.Store {
	case "sql":
		st, err := sqlstore.Open(ctx, dbURL, sqlstore.Config{MaxOpenConns: cfg.DBMaxConns})
		if err != nil {
			a.Close()
			return nil, err
		}
		a.Store, a.DB = st, st.DB()
		a.closers = append(a.closers, st.Close)
	case "redis":
		st, err := redisstore.New(rdb, redisstore.Config{})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("DRIPFLOW_STORE=redis with DRIPFLOW_REDIS_URL %s: %w", opts, err)
		}
		a.Store = st
		db, err := sqlstore.OpenDB(ctx, dbURL, cfg.DBMaxConns)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.DB = db
		a.closers = append(a.closers, func() error {
			sqlDB, err := db.DB()
			if err != nil {
				return err
			}
			return sqlDB.Close()
		})
	default:
		a.Close()
		return nil, fmt.Errorf("DRIPFLOW_STORE must be sql or redis, got %q", cfg.Store)
	}
	a.Events = events.New(rdb, "")
	a.Resources = engine.NewResources(a.DB, cfg.ConnectionURLs(), log)
	a.closers = append(a.closers, a.Resources.Close)
	return a, nil
}

// Close releases what Open connected.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

func redactErr(err error, raw string) error {
	if raw == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, "<url>"))
}
