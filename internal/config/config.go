// Package config reads dripflow's settings from DRIPFLOW_* environment
// variables, which command-line flags may override.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting a dripflow process may use.
type Config struct {
	RedisURL          string // DRIPFLOW_REDIS_URL
	DatabaseURL       string // DRIPFLOW_DATABASE_URL
	Store             string // DRIPFLOW_STORE: sql | redis
	LogLevel          string // DRIPFLOW_LOG_LEVEL: debug | info | warn | error
	LogFormat         string // DRIPFLOW_LOG_FORMAT: json | console
	WorkerConcurrency int    // DRIPFLOW_WORKER_CONCURRENCY
	// DBMaxConns bounds the process's connections to the database
	// (DRIPFLOW_DB_MAX_CONNS; 0: sqlstore's default, 16). On PostgreSQL the
	// SQL store opens a second pool of half as many for its per-batch
	// bookkeeping.
	DBMaxConns int
	Queue      string // DRIPFLOW_QUEUES (the batch queue's name)
	HTTPAddr   string // DRIPFLOW_HTTP_ADDR
	AuthTokens string // DRIPFLOW_AUTH_TOKENS
	BasePath   string // DRIPFLOW_BASE_PATH
	// ClaimLease is how long a dead worker's batch stays claimed
	// (DRIPFLOW_CLAIM_LEASE, a Go duration).
	ClaimLease time.Duration
	// ShutdownTimeout bounds a worker's drain on SIGTERM
	// (DRIPFLOW_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// HeartbeatInterval is how often a worker records in Redis that it is
	// alive (DRIPFLOW_WORKER_HEARTBEAT_INTERVAL, default 2s), and
	// HeartbeatTTL how long after its last beat it counts as dead, its
	// claims ended and its batches run again by others
	// (DRIPFLOW_WORKER_HEARTBEAT_TTL, default 6s; at least twice the
	// interval).
	HeartbeatInterval, HeartbeatTTL time.Duration
	// AuthProxyHeader trusts this header as the identity (oauth2-proxy
	// mode; DRIPFLOW_AUTH_PROXY_HEADER, e.g. X-Forwarded-Email).
	AuthProxyHeader string
	// TrustedProxies are the addresses (CIDRs or IPs, comma-separated) the
	// proxy header is believed from (DRIPFLOW_TRUSTED_PROXIES); with neither
	// it nor ProxySecret, only loopback is trusted.
	TrustedProxies string
	// ProxyRoleHeader is the proxy's header of the identity's groups; the
	// most allowed of viewer, operator and admin among them is its role
	// (DRIPFLOW_PROXY_ROLE_HEADER, e.g. X-Forwarded-Groups).
	ProxyRoleHeader string
	// ProxySecret, sent by the proxy in X-Dripflow-Proxy-Secret, makes the
	// proxy header count from any address (DRIPFLOW_PROXY_SECRET).
	ProxySecret string
	// AuthDisabled lets everyone in (DRIPFLOW_AUTH_DISABLED=true); for
	// local development only.
	AuthDisabled bool
	// SessionKey signs UI sessions (DRIPFLOW_SESSION_KEY); random if empty.
	SessionKey string
	// InsecureCookies drops the Secure cookie flag for plain-HTTP servers
	// (DRIPFLOW_INSECURE_COOKIES=true).
	InsecureCookies bool
	// HTTPReadTimeout bounds reading a whole request to the web process
	// (DRIPFLOW_HTTP_READ_TIMEOUT, default 1m), HTTPIdleTimeout how long an
	// idle keep-alive connection stays open (DRIPFLOW_HTTP_IDLE_TIMEOUT,
	// default 2m).
	HTTPReadTimeout, HTTPIdleTimeout time.Duration
	// MaxEventStreams caps the web process's open event streams
	// (DRIPFLOW_MAX_EVENT_STREAMS, default 200) and
	// MaxEventStreamsPerIdentity those of one identity
	// (DRIPFLOW_MAX_EVENT_STREAMS_PER_IDENTITY, default 20).
	MaxEventStreams, MaxEventStreamsPerIdentity int
	// MonitoringReadOnly makes /monitoring view-only
	// (DRIPFLOW_MONITORING_READONLY=true).
	MonitoringReadOnly bool
	// PrometheusAddr lets asynqmon draw queue charts (DRIPFLOW_PROMETHEUS_ADDR).
	PrometheusAddr string
	// WebMetricsAddr, when set, is where the web process serves /metrics
	// on its own, unauthenticated (DRIPFLOW_WEB_METRICS_ADDR, e.g. :9091);
	// otherwise its /metrics is on DRIPFLOW_HTTP_ADDR behind authentication.
	WebMetricsAddr string
	// MetricsAddr is where workers and schedulers serve /metrics, /healthz
	// and /readyz (DRIPFLOW_METRICS_ADDR; "off" disables). Empty means the
	// process's default: :9090 for a worker, :9091 for a scheduler, so the
	// two can run on one host.
	MetricsAddr string
	// Connections are the named connections flows' connectors use
	// (DRIPFLOW_CONNECTIONS=name=url,name=url): SQL databases, Redis,
	// NATS, RabbitMQ. "default" is always DRIPFLOW_DATABASE_URL and "redis"
	// DRIPFLOW_REDIS_URL unless given here.
	Connections map[string]string
	// FlowsDir is a directory of flow specs (*.yaml, *.yml, *.json; one
	// flow per file) that schedulers create and update flows from, at start
	// and whenever a file changes (DRIPFLOW_FLOWS_DIR). Removing a file does
	// not delete its flow.
	FlowsDir string
	// FlowsDirInterval is how often the directory is checked for changes
	// (DRIPFLOW_FLOWS_DIR_INTERVAL, default 3s).
	FlowsDirInterval time.Duration
	// HealthInterval is how often, at most, the scheduler evaluates a run's
	// database health checks; a held run is looked at again after it
	// (DRIPFLOW_HEALTH_INTERVAL, default 5s, 100ms..1h).
	HealthInterval time.Duration
	// DefaultSleep, DefaultMaxInFlight and DefaultRowsPerSecond are the
	// run options a run gets when neither it nor its definition sets them
	// (DRIPFLOW_DEFAULT_SLEEP_MS, DRIPFLOW_DEFAULT_MAX_IN_FLIGHT,
	// DRIPFLOW_DEFAULT_ROWS_PER_SECOND; unset or empty: the built-in
	// defaults, no sleep, 4 in flight, unlimited). Read by every process
	// that creates runs: web (API and UI) and scheduler (flow runs).
	DefaultSleep                             time.Duration
	DefaultMaxInFlight, DefaultRowsPerSecond int
	// Notifications are the global webhooks (DRIPFLOW_WEBHOOK_*) and
	// DRIPFLOW_PUBLIC_URL.
	Notifications Notifications
}

// FromEnv reads the environment; getenv is os.Getenv when nil.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv("DRIPFLOW_" + name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		RedisURL:    get("REDIS_URL", ""),
		DatabaseURL: get("DATABASE_URL", ""),
		Store:       get("STORE", "sql"),
		LogLevel:    get("LOG_LEVEL", "info"),
		LogFormat:   get("LOG_FORMAT", "json"),
		Queue:       get("QUEUES", "dripflow"),
		HTTPAddr:    get("HTTP_ADDR", ":8080"),
		AuthTokens:  get("AUTH_TOKENS", ""),
		BasePath:    get("BASE_PATH", ""),
	}
	c.AuthProxyHeader = get("AUTH_PROXY_HEADER", "")
	c.TrustedProxies = get("TRUSTED_PROXIES", "")
	c.ProxySecret = get("PROXY_SECRET", "")
	c.ProxyRoleHeader = get("PROXY_ROLE_HEADER", "")
	c.SessionKey = get("SESSION_KEY", "")
	c.PrometheusAddr = get("PROMETHEUS_ADDR", "")
	c.WebMetricsAddr = get("WEB_METRICS_ADDR", "")
	c.MetricsAddr = get("METRICS_ADDR", "")
	var err error
	for name, dst := range map[string]*bool{"AUTH_DISABLED": &c.AuthDisabled, "INSECURE_COOKIES": &c.InsecureCookies, "MONITORING_READONLY": &c.MonitoringReadOnly} {
		if *dst, err = strconv.ParseBool(get(name, "false")); err != nil {
			return c, fmt.Errorf("DRIPFLOW_%s must be true or false, got %q", name, get(name, ""))
		}
	}
	if c.WorkerConcurrency, err = strconv.Atoi(get("WORKER_CONCURRENCY", "0")); err != nil || c.WorkerConcurrency < 0 {
		return c, fmt.Errorf("DRIPFLOW_WORKER_CONCURRENCY must be a non-negative integer, got %q", get("WORKER_CONCURRENCY", ""))
	}
	if c.DBMaxConns, err = strconv.Atoi(get("DB_MAX_CONNS", "0")); err != nil || c.DBMaxConns < 0 {
		return c, fmt.Errorf("DRIPFLOW_DB_MAX_CONNS must be a non-negative integer, got %q", get("DB_MAX_CONNS", ""))
	}
	for name, dst := range map[string]*time.Duration{"HTTP_READ_TIMEOUT": &c.HTTPReadTimeout, "HTTP_IDLE_TIMEOUT": &c.HTTPIdleTimeout} {
		def := map[string]string{"HTTP_READ_TIMEOUT": "1m", "HTTP_IDLE_TIMEOUT": "2m"}[name]
		if *dst, err = time.ParseDuration(get(name, def)); err != nil || *dst <= 0 {
			return c, fmt.Errorf("DRIPFLOW_%s must be a positive duration such as %s, got %q", name, def, get(name, ""))
		}
	}
	for name, dst := range map[string]*int{"MAX_EVENT_STREAMS": &c.MaxEventStreams, "MAX_EVENT_STREAMS_PER_IDENTITY": &c.MaxEventStreamsPerIdentity} {
		def := map[string]string{"MAX_EVENT_STREAMS": "200", "MAX_EVENT_STREAMS_PER_IDENTITY": "20"}[name]
		if *dst, err = strconv.Atoi(get(name, def)); err != nil || *dst <= 0 {
			return c, fmt.Errorf("DRIPFLOW_%s must be a positive integer, got %q", name, get(name, ""))
		}
	}
	if c.ClaimLease, err = time.ParseDuration(get("CLAIM_LEASE", "1m")); err != nil || c.ClaimLease <= 0 {
		return c, fmt.Errorf("DRIPFLOW_CLAIM_LEASE must be a positive duration such as 1m, got %q", get("CLAIM_LEASE", ""))
	}
	if c.ShutdownTimeout, err = time.ParseDuration(get("SHUTDOWN_TIMEOUT", "30s")); err != nil || c.ShutdownTimeout <= 0 {
		return c, fmt.Errorf("DRIPFLOW_SHUTDOWN_TIMEOUT must be a positive duration such as 30s, got %q", get("SHUTDOWN_TIMEOUT", ""))
	}
	c.FlowsDir = get("FLOWS_DIR", "")
	if c.FlowsDirInterval, err = time.ParseDuration(get("FLOWS_DIR_INTERVAL", "3s")); err != nil || c.FlowsDirInterval <= 0 {
		return c, fmt.Errorf("DRIPFLOW_FLOWS_DIR_INTERVAL must be a positive duration such as 3s, got %q", get("FLOWS_DIR_INTERVAL", ""))
	}
	if c.HealthInterval, err = time.ParseDuration(get("HEALTH_INTERVAL", "5s")); err != nil || c.HealthInterval < 100*time.Millisecond || c.HealthInterval > time.Hour {
		return c, fmt.Errorf("DRIPFLOW_HEALTH_INTERVAL must be a duration between 100ms and 1h such as 5s, got %q", get("HEALTH_INTERVAL", ""))
	}
	for name, dst := range map[string]*time.Duration{"WORKER_HEARTBEAT_INTERVAL": &c.HeartbeatInterval, "WORKER_HEARTBEAT_TTL": &c.HeartbeatTTL} {
		def := map[string]string{"WORKER_HEARTBEAT_INTERVAL": "2s", "WORKER_HEARTBEAT_TTL": "6s"}[name]
		if *dst, err = time.ParseDuration(get(name, def)); err != nil || *dst <= 0 {
			return c, fmt.Errorf("DRIPFLOW_%s must be a positive duration such as %s, got %q", name, def, get(name, ""))
		}
	}
	if c.HeartbeatTTL < 2*c.HeartbeatInterval {
		return c, fmt.Errorf("DRIPFLOW_WORKER_HEARTBEAT_TTL (%s) must be at least twice DRIPFLOW_WORKER_HEARTBEAT_INTERVAL (%s)", c.HeartbeatTTL, c.HeartbeatInterval)
	}
	if err := c.readRunDefaults(get); err != nil {
		return c, err
	}
	if c.Connections, err = ParseConnections(get("CONNECTIONS", "")); err != nil {
		return c, fmt.Errorf("DRIPFLOW_CONNECTIONS: %w", err)
	}
	if c.Notifications, err = readNotifications(get); err != nil {
		return c, err
	}
	return c, c.check()
}

// ParseConnections parses DRIPFLOW_CONNECTIONS: name=url entries separated
// by commas or new lines. A comma inside a URL (several PostgreSQL hosts)
// stays part of it: an entry begins only where a name and "=" do.
func ParseConnections(raw string) (map[string]string, error) {
	out := map[string]string{}
	var order []string
	for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\n' || r == '\r' }) {
		for _, piece := range strings.Split(line, ",") {
			name, url, ok := strings.Cut(strings.TrimSpace(piece), "=")
			if ok && connName(name) && strings.Contains(url, ":") {
				if _, dup := out[name]; dup {
					return nil, fmt.Errorf("connection %q is named twice", name)
				}
				if name == "default" {
					return nil, errors.New(`connection "default" is DRIPFLOW_DATABASE_URL; name the others otherwise`)
				}
				out[name] = strings.TrimSpace(url)
				order = append(order, name)
				continue
			}
			if strings.TrimSpace(piece) == "" {
				continue
			}
			if len(order) == 0 {
				return nil, fmt.Errorf("entry %q is not name=url", strings.TrimSpace(piece))
			}
			last := order[len(order)-1]
			out[last] += "," + strings.TrimSpace(piece)
		}
	}
	return out, nil
}

func connName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case (r >= '0' && r <= '9' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ConnectionURLs returns every named connection's URL: DRIPFLOW_CONNECTIONS
// plus "default" (the database) and "redis" (unless named there).
func (c Config) ConnectionURLs() map[string]string {
	out := map[string]string{}
	if c.DatabaseURL != "" {
		out["default"] = c.DatabaseURL
	}
	if c.RedisURL != "" {
		out["redis"] = c.RedisURL
	}
	for k, v := range c.Connections {
		out[k] = v
	}
	return out
}

func (c Config) check() error {
	if c.Store != "sql" && c.Store != "redis" {
		return fmt.Errorf("DRIPFLOW_STORE must be sql or redis, got %q", c.Store)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("DRIPFLOW_LOG_FORMAT must be json or console, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("DRIPFLOW_LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.FlowsDir != "" {
		fi, err := os.Stat(c.FlowsDir)
		switch {
		case err != nil:
			return fmt.Errorf("DRIPFLOW_FLOWS_DIR: %w", err)
		case !fi.IsDir():
			return fmt.Errorf("DRIPFLOW_FLOWS_DIR must be a directory of flow specs, got the file %s", c.FlowsDir)
		}
	}
	return nil
}

// RegisterFlags lets flags on fs override c's fields.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "Redis URL (DRIPFLOW_REDIS_URL)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "database URL: postgres://, mysql://, sqlite:// (DRIPFLOW_DATABASE_URL)")
	fs.StringVar(&c.Store, "store", c.Store, "where runs and batches live: sql or redis (DRIPFLOW_STORE)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (DRIPFLOW_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or console (DRIPFLOW_LOG_FORMAT)")
	fs.StringVar(&c.Queue, "queue", c.Queue, "batch queue name (DRIPFLOW_QUEUES)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "where /metrics, /healthz and /readyz are served (default :9090 for a worker, :9091 for a scheduler; off disables) (DRIPFLOW_METRICS_ADDR)")
}

// ErrMissing is returned by Require for settings a production process needs.
var ErrMissing = errors.New("missing setting")

// Require checks that the Redis and database URLs are set, as the worker,
// scheduler and web binaries need them (only `dripflow dev` has defaults).
func (c Config) Require() error {
	var missing []string
	if c.RedisURL == "" {
		missing = append(missing, "DRIPFLOW_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
	}
	if c.DatabaseURL == "" {
		missing = append(missing, "DRIPFLOW_DATABASE_URL (e.g. postgres://user:pass@127.0.0.1:5432/app?sslmode=disable)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: set %s (or the matching flags); `dripflow dev` runs without them on an embedded Redis and SQLite", ErrMissing, strings.Join(missing, " and "))
	}
	return c.check()
}
