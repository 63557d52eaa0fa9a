package scheduler

import (
	"context"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// The scheduler's Prometheus export, apart from the scheduling it reports on.

// queueStats is what the metrics export needs of the task queue.
type queueStats interface {
	Stats(ctx context.Context) (tasks.QueueStats, error)
}

// passMetrics exports what a pass saw: how long it took, the active runs
// by state, each running run's progress, and the queue's depth. A pass
// calls it; it schedules nothing.
type passMetrics struct {
	queue queueStats
}

// passed records the duration of a pass that started at start.
func (m passMetrics) passed(start time.Time) {
	metrics.SchedulerPass.Observe(metrics.Since(start))
}

// activeRuns exports the active runs a pass found: how many in each state
// and each running run's progress.
func (m passMetrics) activeRuns(runs []store.Run) {
	active := map[store.RunState]float64{}
	for _, r := range runs {
		active[r.State]++
		if r.State == store.RunRunning {
			ratio := 0.0
			if r.Total > 0 {
				ratio = min(1, float64(r.RowsRead)/float64(r.Total))
			}
			metrics.RunProgress.WithLabelValues(strconv.FormatInt(r.ID, 10), r.Definition).Set(ratio)
		}
	}
	for _, st := range activeRunStates {
		metrics.RunsActive.WithLabelValues(string(st)).Set(active[st])
	}
}

// queueDepth exports how many tasks the queue holds in each state.
func (m passMetrics) queueDepth(ctx context.Context) {
	qs, err := m.queue.Stats(ctx)
	if err != nil {
		return
	}
	for state, n := range map[string]int{"pending": qs.Pending, "active": qs.Active, "scheduled": qs.Scheduled,
		"retry": qs.Retry, "archived": qs.Archived, "completed": qs.Completed} {
		metrics.QueueDepth.WithLabelValues(state).Set(float64(n))
	}
}

// forgetRunMetrics drops an ended run's progress, batch size and health gauges.
func forgetRunMetrics(id int64) {
	metrics.RunProgress.DeletePartialMatch(map[string]string{"run": strconv.FormatInt(id, 10)})
	metrics.RunBatchSize.DeletePartialMatch(map[string]string{"run": strconv.FormatInt(id, 10)})
	metrics.RunHealthHeld.DeletePartialMatch(map[string]string{"run": strconv.FormatInt(id, 10)})
}

// exportBatchSize sets the batch size an adaptive run's batches are
// planned with now.
func exportBatchSize(r store.Run, size int) {
	metrics.RunBatchSize.WithLabelValues(strconv.FormatInt(r.ID, 10), r.Definition).Set(float64(size))
}

// exportLeading sets the leader gauge.
func exportLeading(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	metrics.SchedulerLeader.Set(v)
}
