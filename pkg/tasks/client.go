package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/cfgutil"
)

// Defaults of Config.
const (
	// QueueDefault is the queue batch tasks go to.
	QueueDefault = DefaultQueue
	// RetentionDefault is how long a finished task is kept.
	RetentionDefault = DefaultRetention
)

// Config names the queue batch tasks go to and how long finished tasks are
// kept (retention keeps a finished task's id taken, so a late duplicate
// enqueue stays a no-op, and lets asynqmon show it). Zero values mean
// defaults (see WithDefaults); a negative Retention is an error.
type Config struct {
	Queue     string        // default QueueDefault
	Retention time.Duration // default RetentionDefault
}

// WithDefaults returns c with every zero field set to its default. It leaves
// negative values alone, for validation to reject.
func (c Config) WithDefaults() Config {
	if c.Queue == "" {
		c.Queue = QueueDefault
	}
	if c.Retention == 0 {
		c.Retention = RetentionDefault
	}
	return c
}

func (c Config) validate() error {
	if err := cfgutil.NotNegative("Retention", c.Retention); err != nil {
		return fmt.Errorf("queue client: %w", err)
	}
	return nil
}

// Client enqueues batch tasks and inspects them.
type Client struct {
	cfg       Config
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
}

// NewClient returns a Client on rdb. Closing the Client does not close rdb.
// A negative duration in cfg is an error.
func NewClient(rdb redis.UniversalClient, cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{
		cfg:       cfg,
		rdb:       rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
	}, nil
}

// Queue returns the queue name batch tasks go to.
func (c *Client) Queue() string { return c.cfg.Queue }

// EnqueueOptions are per-task settings of EnqueueBatch.
type EnqueueOptions struct {
	// MaxAttempts is how many times the task is tried in all (≥ 1).
	MaxAttempts int
	// Timeout is the run's batch timeout (0: none). The worker enforces it
	// to the millisecond; the queue, whose timeouts are whole seconds and
	// whose "none" is 30 minutes, is given one well beyond it (see
	// QueueTimeout) so it never cuts a batch short first.
	Timeout time.Duration
	// ProcessAt delays the task (zero: now).
	ProcessAt time.Time
}

// NoTimeout is the queue timeout of a batch without a batch timeout:
// effectively none (asynq would apply 30 minutes to a task without one).
const NoTimeout = 10 * 365 * 24 * time.Hour

// QueueTimeout is the timeout the queue gives a batch task whose run has
// batch timeout d: NoTimeout for 0, else d rounded up to a whole second plus
// a minute, a backstop behind the worker's own deadline that leaves it time
// to record the failure.
func QueueTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return NoTimeout
	}
	return (d+time.Second-1)/time.Second*time.Second + time.Minute
}

// EnqueueBatch enqueues the batch's task under its deterministic id. It
// returns false, nil when a task with that id already exists.
func (c *Client) EnqueueBatch(ctx context.Context, p BatchPayload, o EnqueueOptions) (bool, error) {
	payload, err := jsonPayload(p)
	if err != nil {
		return false, err
	}
	retries := o.MaxAttempts - 1
	if retries < 0 {
		retries = 0
	}
	opts := []asynq.Option{
		asynq.TaskID(p.TaskID()),
		asynq.Queue(c.cfg.Queue),
		asynq.MaxRetry(retries),
		asynq.Retention(c.cfg.Retention),
	}
	opts = append(opts, asynq.Timeout(QueueTimeout(o.Timeout)))
	if !o.ProcessAt.IsZero() && o.ProcessAt.After(time.Now()) {
		opts = append(opts, asynq.ProcessAt(o.ProcessAt))
	}
	_, err = c.client.EnqueueContext(ctx, asynq.NewTask(TypeBatch, payload), opts...)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("enqueue task %s: %w", p.TaskID(), err)
	}
	return true, nil
}

// TaskState is where a batch's task is in the queue.
type TaskState string

// Task states. TaskMissing means the queue has no task with the id (never
// enqueued, revoked, expired, or lost with Redis).
const (
	TaskMissing   TaskState = "missing"
	TaskPending   TaskState = "pending"
	TaskActive    TaskState = "active"
	TaskScheduled TaskState = "scheduled"
	TaskRetry     TaskState = "retry"
	TaskArchived  TaskState = "archived"
	TaskCompleted TaskState = "completed"
	TaskOther     TaskState = "other"
)

// BatchTaskState returns the state of the batch's task.
func (c *Client) BatchTaskState(ctx context.Context, p BatchPayload) (TaskState, error) {
	info, err := c.inspector.GetTaskInfo(c.cfg.Queue, p.TaskID())
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
		return TaskMissing, nil
	case err != nil:
		return "", fmt.Errorf("inspect task %s: %w", p.TaskID(), err)
	}
	switch info.State {
	case asynq.TaskStatePending:
		return TaskPending, nil
	case asynq.TaskStateActive:
		return TaskActive, nil
	case asynq.TaskStateScheduled:
		return TaskScheduled, nil
	case asynq.TaskStateRetry:
		return TaskRetry, nil
	case asynq.TaskStateArchived:
		return TaskArchived, nil
	case asynq.TaskStateCompleted:
		return TaskCompleted, nil
	}
	return TaskOther, nil
}

// DeleteBatchTask removes the batch's task unless it is active. A missing task
// is not an error.
func (c *Client) DeleteBatchTask(ctx context.Context, p BatchPayload) error {
	err := c.inspector.DeleteTask(c.cfg.Queue, p.TaskID())
	if err == nil || errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	return fmt.Errorf("delete task %s: %w", p.TaskID(), err)
}

// RunBatchTask makes a scheduled, retrying or archived task pending now.
func (c *Client) RunBatchTask(ctx context.Context, p BatchPayload) error {
	if err := c.inspector.RunTask(c.cfg.Queue, p.TaskID()); err != nil {
		return fmt.Errorf("run task %s now: %w", p.TaskID(), err)
	}
	return nil
}

// QueueStats are a queue's sizes.
type QueueStats struct {
	Pending, Active, Scheduled, Retry, Archived, Completed int
}

// Stats returns the sizes of the batch queue (zero before its first task).
func (c *Client) Stats(ctx context.Context) (QueueStats, error) {
	info, err := c.inspector.GetQueueInfo(c.cfg.Queue)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return QueueStats{}, nil
	}
	if err != nil {
		return QueueStats{}, fmt.Errorf("queue %s stats: %w", c.cfg.Queue, err)
	}
	return QueueStats{Pending: info.Pending, Active: info.Active, Scheduled: info.Scheduled,
		Retry: info.Retry, Archived: info.Archived, Completed: info.Completed}, nil
}
