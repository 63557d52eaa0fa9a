package worker

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/timeline"
)

// noteFailure writes a failed attempt of batch b (as FailBatch left it) to
// its run's timeline. A timeline the store cannot write is logged; the
// batch's failure is recorded already and stands.
func (w *Worker) noteFailure(ctx context.Context, run store.Run, b store.Batch, attempt int, final bool, cause error, log *zap.Logger) {
	timeline.Record(ctx, w.cfg.Store, log, timeline.BatchFailed(b, attempt, run.Options.MaxAttempts, final, w.cfg.ID, cause))
}

// noteReplay writes that a failed batch's archived task was run again from
// the queue's UI, which retried the batch.
func (w *Worker) noteReplay(ctx context.Context, runID, seq int64, log *zap.Logger) {
	timeline.Record(ctx, w.cfg.Store, log, store.RunEvent{RunID: runID, Kind: store.EventRetried, Actor: timeline.Asynqmon, Batch: seq,
		Message: fmt.Sprintf("batch %d retried: its archived task was run again from /monitoring", seq)})
}
