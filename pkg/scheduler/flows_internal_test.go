package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// fakeFlowJob is a flow with a runtime whose runs plan with pipe.
type fakeFlowJob struct {
	name string
	rt   engine.Runtime
	pipe engine.Pipeline
}

func (j fakeFlowJob) Definition() store.Definition {
	return store.Definition{Name: j.name, Kind: store.KindFlow}
}
func (j fakeFlowJob) Defaults() store.RunOptions { return store.RunOptions{} }
func (j fakeFlowJob) Params() params.Schema      { return params.Schema{} }
func (j fakeFlowJob) CanonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	return raw, nil
}
func (j fakeFlowJob) Open(context.Context, engine.Env, json.RawMessage) (engine.Pipeline, error) {
	return j.pipe, nil
}
func (j fakeFlowJob) Runtime() engine.Runtime { return j.rt }

// fakeJobs resolves names to jobs; a missing one is an error.
type fakeJobs map[string]engine.Job

func (f fakeJobs) Resolve(_ context.Context, name string, _ int64) (engine.Job, error) {
	if j, ok := f[name]; ok {
		return j, nil
	}
	return nil, fmt.Errorf("%w: %s", store.ErrNotFound, name)
}

// storeRuns creates runs of flows straight in the store.
type storeRuns struct{ st store.Store }

func (c storeRuns) CreateRun(ctx context.Context, n control.NewRun) (store.Run, error) {
	return c.st.CreateRun(ctx, store.NewRun{Definition: n.Definition, Kind: store.KindFlow, CreatedBy: n.CreatedBy,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
}

func newTestTrigger(t *testing.T, st store.Store, jobs fakeJobs) (*flowTrigger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return &flowTrigger{store: st, jobs: jobs, runs: storeRuns{st}, wake: &wakeup{}, log: zap.New(core)}, logs
}

func activeFlow(t *testing.T, st store.Store, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.UpsertDefinition(ctx, store.Definition{Name: name, Kind: store.KindFlow}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetFlowActive(ctx, name, true); err != nil {
		t.Fatal(err)
	}
}

func flowRuns(t *testing.T, st store.Store, name string) []store.Run {
	t.Helper()
	page, err := st.ListRuns(context.Background(), store.RunFilter{Definition: name, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// An active heartbeat flow with no run gets one; while that run is live no
// second starts, and the trigger asks to be woken at the next tick; an
// inactive flow gets none.
func TestFlowTriggerStartsDueFlows(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	activeFlow(t, st, "beat")
	if _, err := st.UpsertDefinition(ctx, store.Definition{Name: "off", Kind: store.KindFlow}); err != nil {
		t.Fatal(err)
	}
	hb := flows.Heartbeat{Interval: time.Hour}
	ft, _ := newTestTrigger(t, st, fakeJobs{
		"beat": fakeFlowJob{name: "beat", rt: hb, pipe: &fakePipeline{n: 10}},
		"off":  fakeFlowJob{name: "off", rt: hb, pipe: &fakePipeline{n: 10}},
	})
	ft.trigger(ctx)
	runs := flowRuns(t, st, "beat")
	if len(runs) != 1 || runs[0].CreatedBy != SchedulerIdentity {
		t.Fatalf("runs of the due flow %+v, want one by %q", runs, SchedulerIdentity)
	}
	if n := len(flowRuns(t, st, "off")); n != 0 {
		t.Fatalf("%d runs of an inactive flow", n)
	}
	ft.trigger(ctx)
	if n := len(flowRuns(t, st, "beat")); n != 1 {
		t.Fatalf("%d runs after a second look while the first is live, want 1", n)
	}
	if d := ft.wake.next(); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("wake-up in %v, want at the next tick in an hour", d)
	}
}

// A repeating incremental flow with nothing after its watermark starts no
// run; the tick counts as if it ran.
func TestFlowTriggerSkipsIdleTick(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	activeFlow(t, st, "idle")
	if _, err := st.AdvanceWatermark(ctx, "idle", "", "10"); err != nil {
		t.Fatal(err)
	}
	ft, logs := newTestTrigger(t, st, fakeJobs{
		"idle": fakeFlowJob{name: "idle", rt: flows.Heartbeat{Interval: time.Hour}, pipe: &fakePipeline{n: 10, incremental: true}},
	})
	ft.trigger(ctx)
	if n := len(flowRuns(t, st, "idle")); n != 0 {
		t.Fatalf("%d runs of a flow with nothing to move", n)
	}
	if logs.FilterMessage("flow tick skipped: nothing new after the watermark").Len() != 1 || ft.idleAt("idle").IsZero() {
		t.Fatal("the idle tick was not noted")
	}
}

// A flow that cannot be resolved is logged once per cause, not every pass.
func TestFlowTriggerLogsErrorOnce(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	activeFlow(t, st, "broken")
	ft, logs := newTestTrigger(t, st, fakeJobs{})
	for range 3 {
		ft.trigger(ctx)
	}
	if n := logs.FilterMessage("cannot trigger flow").Len(); n != 1 {
		t.Fatalf("logged %d times, want once", n)
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{{errors.New("a"), true}, {errors.New("a"), false}, {errors.New("b"), true}, {nil, true}, {nil, false}} {
		if got := ft.newFlowError("f", tt.err); got != tt.want {
			t.Errorf("newFlowError(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
