package scheduler

import (
	"context"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/tasks"
)

// queueCleaner is what the janitor needs of the task queue (tasks.Client).
type queueCleaner interface {
	CleanQueue(ctx context.Context) ([]tasks.BadEntry, error)
	Queue() string
}

// janitor removes queue entries asynq cannot decode, which would stay in
// its active list for good and make its recoverer fail for the whole queue.
// The leader runs it when it starts leading and every
// Config.JanitorInterval.
type janitor struct {
	queue queueCleaner
	log   *zap.Logger
}

// clean removes the undecodable entries and logs each.
func (j *janitor) clean(ctx context.Context) {
	removed, err := j.queue.CleanQueue(ctx)
	for _, b := range removed {
		j.log.Warn("removed an undecodable queue entry", zap.String("queue", j.queue.Queue()),
			zap.String("list", b.List), zap.String("entry", b.ID), zap.String("reason", b.Reason))
	}
	if err != nil && ctx.Err() == nil {
		j.log.Warn("clean queue", zap.Error(err))
	}
}
