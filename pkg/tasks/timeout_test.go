package tasks_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// The queue never cuts a batch short before the worker's own millisecond
// deadline: a batch timeout of 0 (none) is not asynq's 30-minute default,
// and one under a second is not dropped.
func TestQueueTimeoutLeavesBatchTimeoutsToTheWorker(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	queue := prefix + "q"
	client, err := tasks.NewClient(rdb, tasks.Config{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for seq, tc := range []struct {
		batch, atLeast time.Duration
	}{
		{0, 365 * 24 * time.Hour},
		{500 * time.Millisecond, time.Minute},
		{90 * time.Second, 150 * time.Second},
	} {
		p := tasks.BatchPayload{RunID: 1, Seq: int64(seq + 1)}
		if _, err := client.EnqueueBatch(context.Background(), p, tasks.EnqueueOptions{MaxAttempts: 1, Timeout: tc.batch}); err != nil {
			t.Fatal(err)
		}
		info, err := insp.GetTaskInfo(queue, p.TaskID())
		if err != nil {
			t.Fatal(err)
		}
		if info.Timeout < tc.atLeast {
			t.Errorf("batch timeout %s: queue timeout %s, want at least %s", tc.batch, info.Timeout, tc.atLeast)
		}
	}
}
