package scheduler

import (
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func TestPacing(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts store.RunOptions
		want time.Duration
	}{
		{"none", store.RunOptions{BatchSize: 100}, 0},
		{"sleep", store.RunOptions{BatchSize: 100, Sleep: time.Second}, time.Second},
		{"rows per second", store.RunOptions{BatchSize: 100, RowsPerSecond: 1000}, 100 * time.Millisecond},
		{"the longer of both", store.RunOptions{BatchSize: 100, RowsPerSecond: 1000, Sleep: 50 * time.Millisecond}, 100 * time.Millisecond},
		{"sleep longer", store.RunOptions{BatchSize: 100, RowsPerSecond: 1000, Sleep: time.Second}, time.Second},
	} {
		if got := pacing(store.Run{Options: tt.opts}); got != tt.want {
			t.Errorf("%s: pacing = %v, want %v", tt.name, got, tt.want)
		}
	}
	for gap, want := range map[time.Duration]time.Duration{
		10 * time.Millisecond:  250 * time.Millisecond,
		500 * time.Millisecond: 500 * time.Millisecond,
		time.Minute:            time.Second,
	} {
		if got := paceTolerance(gap); got != want {
			t.Errorf("paceTolerance(%v) = %v, want %v", gap, got, want)
		}
	}
}

// Batch starts are due a gap apart, counted from when the previous one was
// due: a late look makes up its lateness within the tolerance, a run held
// back longer starts afresh.
func TestPace(t *testing.T) {
	const gap = 100 * time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var st runState
	steps := []struct {
		at     time.Duration // since t0
		wantOK bool
		wantAt time.Duration // the next start (ok) or this one's turn (not ok)
	}{
		{0, true, 100 * time.Millisecond},                       // the first starts at once
		{10 * time.Millisecond, false, 100 * time.Millisecond},  // too soon: held until its turn
		{100 * time.Millisecond, true, 200 * time.Millisecond},  // on time
		{350 * time.Millisecond, true, 300 * time.Millisecond},  // 150 ms late: due at 200, next at 300
		{350 * time.Millisecond, true, 400 * time.Millisecond},  // making up: one more at once
		{360 * time.Millisecond, false, 400 * time.Millisecond}, // caught up
		{3 * time.Second, true, 3100 * time.Millisecond},        // held back long: afresh from now
	}
	for i, s := range steps {
		ok, at := st.pace(gap, t0.Add(s.at))
		if ok != s.wantOK || !at.Equal(t0.Add(s.wantAt)) {
			t.Errorf("step %d at +%v: pace = %v, +%v; want %v, +%v", i, s.at, ok, at.Sub(t0), s.wantOK, s.wantAt)
		}
	}
}

func TestWakeup(t *testing.T) {
	var w wakeup
	if d := w.next(); d != 0 {
		t.Fatalf("next() = %v with nothing asked, want 0", d)
	}
	w.noLaterThan(time.Now().Add(time.Hour))
	w.noLaterThan(time.Now().Add(time.Minute))
	w.noLaterThan(time.Now().Add(2 * time.Hour))
	if d := w.next(); d > time.Minute || d < 59*time.Second {
		t.Fatalf("next() = %v, want the earliest asked for (1m)", d)
	}
	if d := w.next(); d != 0 {
		t.Fatalf("next() = %v after it was taken, want 0", d)
	}
	w.noLaterThan(time.Now().Add(-time.Hour))
	if d := w.next(); d != time.Millisecond {
		t.Fatalf("next() = %v for a time past, want 1ms", d)
	}
}
