package web

import (
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/api"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// The conversions from the store's and control's types into the API's wire
// types live here, so package api stays a leaf the client links alone.

// optionsOf converts a run's options.
func optionsOf(o store.RunOptions) api.Options {
	return api.Options{
		BatchSize: o.BatchSize, MaxAttempts: o.MaxAttempts, MaxInFlight: o.MaxInFlight,
		SleepMS: o.Sleep.Milliseconds(), RowsPerSecond: o.RowsPerSecond,
		BatchTimeoutMS: o.BatchTimeout.Milliseconds(), ErrorBudget: o.ErrorBudget,
		TargetBatchMS: o.TargetBatchTime.Milliseconds(), MinBatchSize: o.MinBatchSize, MaxBatchSize: o.MaxBatchSize,
		HealthChecks: healthChecksOf(o.HealthChecks),
	}
}

// healthChecksOf converts a run's health checks.
func healthChecksOf(cs []store.HealthCheck) []api.HealthCheck {
	if len(cs) == 0 {
		return nil
	}
	out := make([]api.HealthCheck, len(cs))
	for i, c := range cs {
		out[i] = api.HealthCheck{Kind: string(c.Kind), Name: c.Name, Connection: c.Connection,
			MaxSeconds: c.MaxSeconds, Table: c.Table, Max: c.Max, Query: c.Query}
	}
	return out
}

// healthChecksIn converts a request's health checks.
func healthChecksIn(cs []api.HealthCheck) []store.HealthCheck {
	if len(cs) == 0 {
		return nil
	}
	out := make([]store.HealthCheck, len(cs))
	for i, c := range cs {
		out[i] = store.HealthCheck{Kind: store.HealthKind(c.Kind), Name: c.Name, Connection: c.Connection,
			MaxSeconds: c.MaxSeconds, Table: c.Table, Max: c.Max, Query: c.Query}
	}
	return out
}

// holdOf converts why a run is held; only a running run reads as held (a
// paused or ended run's last hold is history).
func holdOf(r store.Run) *api.Hold {
	if r.Held == nil || r.State != store.RunRunning {
		return nil
	}
	return &api.Hold{Reason: r.Held.Reason, Check: r.Held.Check, Since: r.Held.Since}
}

// progressOf converts a run's progress.
func progressOf(p control.Progress) api.Progress {
	batches := make(map[string]int64, len(p.Batches))
	for s, n := range p.Batches {
		batches[string(s)] = n
	}
	return api.Progress{
		Total: p.Total, TotalEstimated: p.TotalEstimated, Processed: p.Processed,
		Percent: p.Percent, Batches: batches, Rate: p.Rate, ETA: p.ETA, Elapsed: p.Elapsed,
	}
}

// runOf converts a run, with its progress at now.
func runOf(r store.Run, now time.Time) api.Run {
	return api.Run{
		ID: strconv.FormatInt(r.ID, 10), Definition: r.Definition, Kind: string(r.Kind), SpecVersion: r.SpecVersion, Status: string(r.State),
		Params: r.Params, CreatedBy: r.CreatedBy, Options: optionsOf(r.Options), Error: r.Error,
		StartAt: r.StartAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		Progress: progressOf(control.ProgressOf(r, now)),
		Rows:     api.Rows{Read: r.RowsRead, Written: r.RowsWritten, Skipped: r.RowsSkipped},
		PlanDone: r.PlanDone,
		Held:     holdOf(r),
	}
}
