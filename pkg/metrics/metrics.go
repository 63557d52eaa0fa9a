// Package metrics holds dripflow's Prometheus metrics. Every process registers
// them in the default registry and serves them at /metrics.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// Batches counts batch attempts by definition and outcome
	// (succeeded, failed, retried, finished_elsewhere).
	Batches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dripflow", Name: "batches_total",
		Help: "Batch attempts by definition and outcome (succeeded, retried: failed and will be retried, failed: failed for good).",
	}, []string{"definition", "outcome"})

	// BatchDuration observes how long a batch attempt ran.
	BatchDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "dripflow", Name: "batch_duration_seconds",
		Help:    "Duration of batch attempts.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"definition"})

	// QueueWait observes how long a batch waited between being enqueued and
	// starting: the scheduler's and the queue's lag together.
	QueueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "dripflow", Name: "batch_queue_wait_seconds",
		Help:    "Time from a batch being enqueued to a worker starting it.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
	}, []string{"definition"})

	// Rows counts rows of succeeded batches by definition and kind (read,
	// written, skipped).
	Rows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dripflow", Name: "rows_total",
		Help: "Rows of succeeded batches by definition and kind (read, written, skipped).",
	}, []string{"definition", "kind"})

	// RunProgress is the progress (0..1) of each active run.
	RunProgress = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "run_progress_ratio",
		Help: "Progress of active runs (processed / total; 0 while the total is unknown).",
	}, []string{"run", "definition"})

	// RunHealthHeld is 1 for each health check that holds a running run's
	// planning back, 0 for its checks that pass; dropped when the run ends.
	RunHealthHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "run_health_held",
		Help: "1 while the run's health check fails and holds its planning back, else 0 (dropped when the run ends).",
	}, []string{"run", "definition", "check"})

	// RunHealthHeldSeconds counts the seconds runs spent held by a failing
	// health check, by definition.
	RunHealthHeldSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "dripflow", Name: "run_health_held_seconds_total",
		Help: "Seconds runs of the definition spent held back by a failing database health check.",
	}, []string{"definition"})

	// RunBatchSize is the batch size the scheduler plans each active
	// adaptive run's batches with now (see RunOptions.TargetBatchTime).
	RunBatchSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "run_batch_size",
		Help: "Batch size the scheduler plans an active adaptive run's batches with now (target_batch_ms set).",
	}, []string{"run", "definition"})

	// RunsActive counts runs by state, as the scheduler last saw them.
	RunsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "runs",
		Help: "Active runs by state (scheduled, running, cancelling).",
	}, []string{"state"})

	// SchedulerPass observes how long one scheduling pass over all active
	// runs takes.
	SchedulerPass = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "dripflow", Name: "scheduler_pass_seconds",
		Help:    "Duration of a scheduler pass over every active run.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})

	// SchedulerLeader is 1 on the scheduler holding the leader lease.
	SchedulerLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "scheduler_leader",
		Help: "1 when this scheduler holds the leader lease.",
	})

	// WorkerSlots is how many batches this worker process runs at once
	// (its concurrency); 0 in other processes.
	WorkerSlots = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "worker_slots",
		Help: "Batches this worker process runs at once (its concurrency).",
	})

	// WorkerBusy counts the seconds this worker's slots spent on batch
	// tasks, from taking a task to being done with it: the claim, the
	// batch, its checkpoint and commit, and recording the outcome.
	// rate(WorkerBusy) / WorkerSlots is the share of the slots in use.
	WorkerBusy = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "dripflow", Name: "worker_busy_seconds_total",
		Help: "Seconds this worker's slots spent handling batch tasks (claim to commit); divide its rate by dripflow_worker_slots for slot use.",
	})

	// WorkerRunning is the batch tasks this worker is handling now.
	WorkerRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "worker_batches_running",
		Help: "Batch tasks this worker process is handling now.",
	})

	// QueueDepth is the batch queue's size by task state.
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "dripflow", Name: "queue_depth",
		Help: "Tasks in the batch queue by state (pending, active, scheduled, retry, archived, completed).",
	}, []string{"state"})
)

var once sync.Once

// All returns every dripflow metric.
func All() []prometheus.Collector {
	return []prometheus.Collector{Batches, BatchDuration, QueueWait, Rows, RunProgress, RunBatchSize, RunsActive,
		SchedulerPass, SchedulerLeader, QueueDepth, WorkerSlots, WorkerBusy, WorkerRunning,
		RunHealthHeld, RunHealthHeldSeconds}
}

// Register adds every metric to the default registry (once).
func Register() {
	once.Do(func() { prometheus.MustRegister(All()...) })
}

// Since returns the seconds elapsed since t.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }
