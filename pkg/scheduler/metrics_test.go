package scheduler

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dripflow/dripflow/pkg/metrics"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// noStats is a queue whose stats cannot be read.
type noStats struct{}

func (noStats) Stats(context.Context) (tasks.QueueStats, error) {
	return tasks.QueueStats{}, errors.New("no stats")
}

type someStats tasks.QueueStats

func (s someStats) Stats(context.Context) (tasks.QueueStats, error) { return tasks.QueueStats(s), nil }

func TestPassMetrics(t *testing.T) {
	m := passMetrics{queue: someStats{Pending: 7, Archived: 2}}
	m.activeRuns([]store.Run{
		{ID: 901, Definition: "d", State: store.RunRunning, Total: 200, Counters: store.Counters{RowsRead: 50}},
		{ID: 902, Definition: "d", State: store.RunRunning, Total: -1},
		{ID: 903, Definition: "d", State: store.RunScheduled},
	})
	m.queueDepth(context.Background())
	for _, tt := range []struct {
		name string
		got  float64
		want float64
	}{
		{"running", gauge(t, metrics.RunsActive, "state", "running"), 2},
		{"scheduled", gauge(t, metrics.RunsActive, "state", "scheduled"), 1},
		{"cancelling", gauge(t, metrics.RunsActive, "state", "cancelling"), 0},
		{"progress of 901", gauge(t, metrics.RunProgress, "run", "901"), 0.25},
		{"pending tasks", gauge(t, metrics.QueueDepth, "state", "pending"), 7},
		{"archived tasks", gauge(t, metrics.QueueDepth, "state", "archived"), 2},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	forgetRunMetrics(901)
	forgetRunMetrics(902)
	for _, id := range []string{"901", "902"} {
		if v := gauge(t, metrics.RunProgress, "run", id); v != -1 {
			t.Errorf("run %s's progress gauge left (%v) after the run was forgotten", id, v)
		}
	}
}

// gauge reads the gauge of c whose label name has value v (-1: none).
func gauge(t *testing.T, c prometheus.Collector, name, v string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == name && l.GetValue() == v {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
