package tasks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/dripflow/dripflow/internal/cfgutil"
)

// Attempt describes the delivery of a batch task being handled.
type Attempt struct {
	TaskID   string
	Retried  int // how many times the task was retried before this attempt
	MaxRetry int // how many retries it may have in all
}

// Last reports whether a failure of this attempt is the final one.
func (a Attempt) Last() bool { return a.Retried >= a.MaxRetry }

// Handler processes one batch task.
type Handler interface {
	ProcessBatch(ctx context.Context, p BatchPayload, a Attempt) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, p BatchPayload, a Attempt) error

// ProcessBatch calls f.
func (f HandlerFunc) ProcessBatch(ctx context.Context, p BatchPayload, a Attempt) error {
	return f(ctx, p, a)
}

// Outcomes a Handler returns besides nil (done) and a plain error (retry with
// backoff, archived after the last attempt).
var (
	// ErrRevoke drops the task without retrying or archiving it: the store
	// decides the batch's fate (its run is not running; the scheduler
	// re-enqueues the batch when it is again).
	ErrRevoke = errors.New("task revoked")
	// ErrFinal archives the task at once without further retries.
	ErrFinal = errors.New("final failure")
)

// Revoke wraps err so the task is dropped (see ErrRevoke).
func Revoke(err error) error { return fmt.Errorf("%w: %w", ErrRevoke, err) }

// Final wraps err so the task is archived without retry (see ErrFinal).
func Final(err error) error { return fmt.Errorf("%w: %w", ErrFinal, err) }

// Defaults of ServerConfig.
const (
	// ShutdownTimeoutDefault is how long a stopping server waits for
	// running batches.
	ShutdownTimeoutDefault = 30 * time.Second
	// PollIntervalDefault is how often an idle server looks for tasks
	// (asynq's own default is 1s, most of a run's time to first batch).
	PollIntervalDefault = 10 * time.Millisecond
	// PrefetchDefault is how many tasks a server whose every slot is busy
	// holds ready for the next free one.
	PrefetchDefault = 1
	// PrefetchOff is the Prefetch that holds none.
	PrefetchOff = -1
	// PrefetchWaitDefault is how long a held task waits for a free slot
	// before it goes back to the queue for any server to take.
	PrefetchWaitDefault = time.Second
	// DelayedCheckIntervalDefault is how often due retries (and tasks given
	// back) move to the queue (asynq's own default is 5s).
	DelayedCheckIntervalDefault = 100 * time.Millisecond
)

// ServerConfig configures the worker's queue server. Zero values mean
// defaults (see WithDefaults); negative ones are errors.
type ServerConfig struct {
	Queue           string        // default DefaultQueue
	Concurrency     int           // batches processed at once; default the number of CPUs
	ShutdownTimeout time.Duration // how long SIGTERM waits for running batches; default ShutdownTimeoutDefault
	// PollInterval is how often an idle server looks for tasks (asynq
	// sleeps between a half and one and a half of it after finding the
	// queue empty); default PollIntervalDefault. It bounds how soon an idle
	// worker starts a new run's first batch, and how long a worker whose
	// queue ran dry for a moment stays idle. An idle poll is one cheap
	// Redis script.
	PollInterval time.Duration
	// Prefetch is how many tasks a server whose every slot is busy takes
	// from the queue ahead and holds for the next slot that frees up, so
	// the slot starts its next batch at once rather than after the queue's
	// round trips (marking the last task complete, taking the next one);
	// default PrefetchDefault, PrefetchOff for none. A held task that finds
	// no slot within PrefetchWait (default PrefetchWaitDefault), or while
	// the server stops, goes back to the queue without counting as an
	// attempt, for any server to take — unless it is on its last attempt
	// (asynq would archive it): that one waits for a slot, and a stopping
	// server runs it in its drain.
	Prefetch     int
	PrefetchWait time.Duration
	// DelayedCheckInterval is how often retries that are due, and tasks
	// given back, move to the queue; default DelayedCheckIntervalDefault.
	DelayedCheckInterval time.Duration
	// RetryDelay is the backoff before retry n (1-based) of a failed batch;
	// default DefaultRetryDelay.
	RetryDelay func(n int) time.Duration
	Logger     *zap.Logger // default zap.NewNop()
}

// WithDefaults returns c with every zero field set to its default. It leaves
// negative values alone, for validation to reject.
func (c ServerConfig) WithDefaults() ServerConfig {
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.NumCPU()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.Prefetch == 0 {
		c.Prefetch = PrefetchDefault
	}
	if c.PrefetchWait == 0 {
		c.PrefetchWait = PrefetchWaitDefault
	}
	if c.DelayedCheckInterval == 0 {
		c.DelayedCheckInterval = DelayedCheckIntervalDefault
	}
	if c.RetryDelay == nil {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c ServerConfig) validate() error {
	if err := cmp.Or(
		cfgutil.NotNegative("Concurrency", c.Concurrency),
		cfgutil.NotNegative("ShutdownTimeout", c.ShutdownTimeout),
		cfgutil.NotNegative("PollInterval", c.PollInterval),
		cfgutil.NotNegative("PrefetchWait", c.PrefetchWait),
		cfgutil.NotNegative("DelayedCheckInterval", c.DelayedCheckInterval),
	); err != nil {
		return fmt.Errorf("queue server: %w", err)
	}
	if c.Prefetch < PrefetchOff {
		return fmt.Errorf("queue server: Prefetch must be positive, 0 (default) or PrefetchOff (-1), got %d", c.Prefetch)
	}
	return nil
}

// prefetched is how many tasks beyond Concurrency the server takes.
func (c ServerConfig) prefetched() int { return max(c.Prefetch, 0) }

// DefaultRetryDelay is exponential backoff from 1s, capped at 1 minute, with
// ±20 % jitter.
func DefaultRetryDelay(n int) time.Duration {
	d := time.Second << min(max(n-1, 0), 6)
	if d > time.Minute {
		d = time.Minute
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Server runs batch tasks from the queue.
type Server struct {
	srv   *asynq.Server
	log   *zap.Logger
	slots *slots
}

// errGiveBack is what a held task that found no free slot returns: asynq
// puts it back (through its retry set, at once) without counting an
// attempt.
var errGiveBack = errors.New("no free slot: task given back to the queue")

// NewServer returns a Server on rdb. It does not close rdb. A negative
// count or duration in cfg is an error.
func NewServer(rdb redis.UniversalClient, cfg ServerConfig) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		// asynq takes the next task only once a slot of its own is free,
		// after marking the last one complete: the slots beyond
		// Concurrency hold tasks ready while ours run (see slots).
		Concurrency:              cfg.Concurrency + cfg.prefetched(),
		Queues:                   map[string]int{cfg.Queue: 1},
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.PollInterval,
		DelayedTaskCheckInterval: cfg.DelayedCheckInterval,
		RetryDelayFunc: func(n int, err error, _ *asynq.Task) time.Duration {
			if errors.Is(err, errGiveBack) {
				return 0
			}
			return cfg.RetryDelay(n + 1)
		},
		IsFailure: func(err error) bool { return !errors.Is(err, errGiveBack) },
		Logger:    zapLogger{log.Sugar()},
		LogLevel:  asynq.WarnLevel,
	})
	return &Server{srv: srv, log: log, slots: newSlots(cfg.Concurrency, cfg.PrefetchWait)}, nil
}

// Run processes tasks with h until ctx ends, then stops taking tasks and
// waits up to the shutdown timeout for running ones (graceful drain).
func (s *Server) Run(ctx context.Context, h Handler) error {
	mux := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != TypeBatch {
			return fmt.Errorf("%w: unknown task type %q", asynq.SkipRetry, t.Type())
		}
		p, err := DecodeBatchPayload(t.Payload())
		if err != nil {
			return fmt.Errorf("%w: %w", asynq.SkipRetry, err)
		}
		a := Attempt{}
		a.TaskID, _ = asynq.GetTaskID(ctx)
		a.Retried, _ = asynq.GetRetryCount(ctx)
		a.MaxRetry, _ = asynq.GetMaxRetry(ctx)
		// A task on its last attempt cannot go back without asynq
		// archiving it: it waits for its slot whatever happens.
		if !s.slots.acquire(ctx, a.Retried < a.MaxRetry) {
			return cmp.Or(ctx.Err(), errGiveBack)
		}
		err = func() error {
			defer s.slots.release()
			return h.ProcessBatch(ctx, p, a)
		}()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrRevoke):
			return fmt.Errorf("%w: %w", asynq.RevokeTask, err)
		case errors.Is(err, ErrFinal):
			return fmt.Errorf("%w: %w", asynq.SkipRetry, err)
		}
		return err
	})
	if err := s.srv.Start(mux); err != nil {
		return fmt.Errorf("start queue server: %w", err)
	}
	<-ctx.Done()
	// Held tasks go back to the queue at once rather than wait for the
	// running batches.
	s.slots.stop()
	s.srv.Shutdown()
	return nil
}

// zapLogger adapts zap to asynq's logger.
type zapLogger struct{ s *zap.SugaredLogger }

func (l zapLogger) Debug(args ...any) { l.s.Debug(args...) }
func (l zapLogger) Info(args ...any)  { l.s.Info(args...) }
func (l zapLogger) Warn(args ...any)  { l.s.Warn(args...) }
func (l zapLogger) Error(args ...any) { l.s.Error(args...) }
func (l zapLogger) Fatal(args ...any) { l.s.Fatal(args...) }
