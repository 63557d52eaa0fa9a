package flows

import (
	"strings"

	"github.com/dripflow/dripflow/pkg/engine"
	"testing"
	"time"
)

func TestRuntimes(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 7, 30, 0, time.UTC)
	tests := []struct {
		name string
		rt   interface{ Next(time.Time) time.Time }
		last time.Time
		want time.Time
	}{
		{"once never ran", Once{}, time.Time{}, time.Unix(0, 0)},
		{"once ran", Once{}, t0, time.Time{}},
		{"heartbeat never ran", Heartbeat{Interval: time.Minute}, time.Time{}, time.Unix(0, 0)},
		{"heartbeat", Heartbeat{Interval: 30 * time.Second}, t0, t0.Add(30 * time.Second)},
		{"cron every 5 minutes", Cron{Spec: "*/5 * * * *"}, t0, time.Date(2026, 11, 23, 10, 10, 0, 0, time.UTC)},
		{"cron hourly", Cron{Spec: "@hourly"}, t0, time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := tt.rt.Next(tt.last); !got.Equal(tt.want) {
			t.Errorf("%s: Next(%v) = %v, want %v", tt.name, tt.last, got, tt.want)
		}
	}
}

func TestNewRejectsBadFlows(t *testing.T) {
	src, sink := &memSource{N: 3}, &memSink{}
	tests := []struct {
		f    Flow
		want string
	}{
		{Flow{Source: src, Sink: sink}, "Name is required"},
		{Flow{Name: "f", Sink: sink}, `flow "f": Source is required`},
		{Flow{Name: "f", Source: src}, `flow "f": Sink is required`},
		{Flow{Name: "f", Source: src, Sink: sink, Runtime: Cron{Spec: "every tuesday"}}, `flow "f": cron spec`},
		{Flow{Name: "f", Source: src, Sink: sink, Runtime: Heartbeat{}}, "heartbeat interval must be positive"},
		{Flow{Name: "f", Source: src, Sink: sink, Transforms: []Transform{{Name: "t"}}}, `transform 0 ("t") has no function`},
	}
	for _, tt := range tests {
		_, err := New(tt.f)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tt.f, err, tt.want)
		}
	}
	j, err := New(Flow{Name: "ok", Source: src, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	trig, ok := j.(engine.Triggered)
	if !ok || trig.Runtime().String() != "once" {
		t.Fatalf("a flow without runtime should run once, got %v", j)
	}
}
