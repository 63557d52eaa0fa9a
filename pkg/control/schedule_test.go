package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

// Resume is for paused runs: a run scheduled for 2099 is not started by it
// (it used to start at once). A scheduled run is started now or moved with
// Start and Reschedule.
func TestResumeStartReschedule(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctl := &control.Controller{Store: st}
	later := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	r, err := st.CreateRun(ctx, store.NewRun{Definition: "d", Kind: store.KindBackfill, CreatedBy: "t", StartAt: &later,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = ctl.Resume(ctx, r.ID)
	var te *store.TransitionError
	if !errors.As(err, &te) || !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Resume of a scheduled run: %v, want a conflict", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "scheduled") || !strings.Contains(msg, "start") || !strings.Contains(msg, "reschedule") {
		t.Errorf("Resume of a scheduled run says %q; want it to say the run is scheduled and how to start or reschedule it", msg)
	}
	if got, _ := st.GetRun(ctx, r.ID); got.State != store.RunScheduled {
		t.Fatalf("refused resume left the run %s, want scheduled", got.State)
	}

	sooner := time.Date(2098, 6, 1, 12, 0, 0, 0, time.UTC)
	got, err := ctl.Reschedule(ctx, r.ID, sooner)
	if err != nil || got.State != store.RunScheduled || got.StartAt == nil || !got.StartAt.Equal(sooner) {
		t.Fatalf("Reschedule: %s at %v, %v; want scheduled at %v", got.State, got.StartAt, err, sooner)
	}
	if _, err := ctl.Reschedule(ctx, r.ID, time.Time{}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Fatalf("Reschedule to the zero time: %v, want an invalid argument", err)
	}

	got, err = ctl.Start(ctx, r.ID)
	if err != nil || got.State != store.RunRunning {
		t.Fatalf("Start: %s, %v; want running", got.State, err)
	}
	if _, err := ctl.Start(ctx, r.ID); !errors.As(err, &te) {
		t.Fatalf("Start of a running run: %v, want a TransitionError", err)
	}
	if _, err := ctl.Reschedule(ctx, r.ID, later); !errors.As(err, &te) {
		t.Fatalf("Reschedule of a running run: %v, want a TransitionError", err)
	}
	if _, err := ctl.Pause(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Start(ctx, r.ID); !errors.As(err, &te) {
		t.Fatalf("Start of a paused run: %v, want a TransitionError (resume it)", err)
	}
	if got, err := ctl.Resume(ctx, r.ID); err != nil || got.State != store.RunRunning {
		t.Fatalf("Resume of a paused run: %s, %v", got.State, err)
	}
}
