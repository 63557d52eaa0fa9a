package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/cfgutil"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/health"
	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// Defaults of Config.
const (
	// PollIntervalDefault is how often every active run is looked at even
	// without events.
	PollIntervalDefault = time.Second
	// ReconcileIntervalDefault is how often the queue is checked against
	// the store.
	ReconcileIntervalDefault = 10 * time.Second
	// ReconcileGraceDefault is how old an enqueued batch must be before its
	// missing task counts as lost.
	ReconcileGraceDefault = 10 * time.Second
	// LeaderKeyDefault is the Redis key of the leader lease.
	LeaderKeyDefault = "dripflow:scheduler:leader"
	// LeaderTTLDefault is the leader lease's lifetime.
	LeaderTTLDefault = 5 * time.Second
	// WorkerCheckIntervalDefault is how often the leader looks for workers
	// whose heartbeat stopped.
	WorkerCheckIntervalDefault = time.Second
	// JanitorIntervalDefault is how often the leader removes queue entries
	// asynq cannot decode.
	JanitorIntervalDefault = time.Minute
	// FlowsDirIntervalDefault is how often Config.FlowsDir is checked for
	// changed files.
	FlowsDirIntervalDefault = 3 * time.Second
	// HealthIntervalDefault is how often a run's database health checks
	// are evaluated at most.
	HealthIntervalDefault = 5 * time.Second
)

// Config configures a scheduler. Zero values mean defaults (see
// WithDefaults); negative durations are errors.
type Config struct {
	Store    store.Store
	Redis    redis.UniversalClient
	DB       *gorm.DB         // the application database (for planning)
	Registry *engine.Registry // default engine.DefaultRegistry
	Events   *events.Bus      // default events.New(Redis, "")
	Tasks    tasks.Config
	// Resources are the named connections and shared clients flows'
	// sources plan with; default only DB.
	Resources *engine.Resources
	// PollInterval is how often every active run is looked at even without
	// events; default PollIntervalDefault.
	PollInterval time.Duration
	// ReconcileInterval is how often the queue is checked against the
	// store; default ReconcileIntervalDefault. ReconcileGrace is how old an
	// enqueued batch must be before its missing task counts as lost;
	// default ReconcileGraceDefault.
	ReconcileInterval time.Duration
	ReconcileGrace    time.Duration
	// PresenceKey is the Redis key of the workers' registry (see
	// worker.Presence); default worker.DefaultPresenceKey. Every
	// WorkerCheckInterval (default 1s) the leader looks for workers whose
	// heartbeat stopped and ends their claims, so their batches run again
	// at once rather than after their claim lease.
	PresenceKey         string
	WorkerCheckInterval time.Duration
	// JanitorInterval is how often the leader removes queue entries asynq
	// cannot decode (see tasks.Client.CleanQueue); default 1m.
	JanitorInterval time.Duration
	// LeaderKey and LeaderTTL define the leader lease; defaults
	// LeaderKeyDefault and LeaderTTLDefault.
	LeaderKey string
	LeaderTTL time.Duration
	// FlowsDir, when set, is a directory of flow spec files (*.yaml,
	// *.yml, *.json) the scheduler creates and updates flows from, at start
	// and whenever a file changes (checked every FlowsDirInterval, default
	// FlowsDirIntervalDefault). Every scheduler may watch it: applying a
	// file that matches its flow's latest version changes nothing. A
	// removed file does not delete its flow.
	FlowsDir         string
	FlowsDirInterval time.Duration
	// HealthInterval is how often, at most, a run's database health checks
	// are evaluated (store.RunOptions.HealthChecks): a held run is looked
	// at again after it; default HealthIntervalDefault
	// (DRIPFLOW_HEALTH_INTERVAL). HealthTimeout bounds one check; default
	// health.DefaultTimeout.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	ID             string      // default host:pid
	Logger         *zap.Logger // default zap.NewNop()

	// RunDefaults are the process's DRIPFLOW_DEFAULT_* run options, applied
	// to the flow runs it creates (heartbeat and cron triggers).
	RunDefaults control.Defaults
	// Notify configures the global webhooks and how webhooks are sent; the
	// leader calls definitions' hooks and sends webhooks (see hooks.go).
	Notify notify.Config
	// TracerProvider traces the runs it creates and the batches it
	// enqueues (see trace.go); nil: tracing off.
	TracerProvider trace.TracerProvider
}

// WithDefaults returns c with every zero field set to its default. It leaves
// negative values alone, for validation to reject.
func (c Config) WithDefaults() Config {
	if c.Registry == nil {
		c.Registry = engine.DefaultRegistry
	}
	if c.Events == nil && c.Redis != nil {
		c.Events = events.New(c.Redis, "")
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	if c.ReconcileGrace == 0 {
		c.ReconcileGrace = ReconcileGraceDefault
	}
	if c.LeaderKey == "" {
		c.LeaderKey = LeaderKeyDefault
	}
	if c.LeaderTTL == 0 {
		c.LeaderTTL = LeaderTTLDefault
	}
	if c.WorkerCheckInterval == 0 {
		c.WorkerCheckInterval = WorkerCheckIntervalDefault
	}
	if c.JanitorInterval == 0 {
		c.JanitorInterval = JanitorIntervalDefault
	}
	if c.FlowsDirInterval == 0 {
		c.FlowsDirInterval = FlowsDirIntervalDefault
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = HealthIntervalDefault
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = health.DefaultTimeout
	}
	if c.ID == "" {
		c.ID = cfgutil.ProcessID()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate() error {
	if c.Store == nil || c.Redis == nil {
		return errors.New("scheduler: Store and Redis are required")
	}
	if err := cmp.Or(
		cfgutil.NotNegative("PollInterval", c.PollInterval),
		cfgutil.NotNegative("ReconcileInterval", c.ReconcileInterval),
		cfgutil.NotNegative("ReconcileGrace", c.ReconcileGrace),
		cfgutil.NotNegative("LeaderTTL", c.LeaderTTL),
		cfgutil.NotNegative("WorkerCheckInterval", c.WorkerCheckInterval),
		cfgutil.NotNegative("JanitorInterval", c.JanitorInterval),
		cfgutil.NotNegative("FlowsDirInterval", c.FlowsDirInterval),
		cfgutil.NotNegative("HealthInterval", c.HealthInterval),
		cfgutil.NotNegative("HealthTimeout", c.HealthTimeout),
	); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if err := c.Notify.Validate(); err != nil {
		return fmt.Errorf("scheduler: notifications: %w", err)
	}
	return nil
}
