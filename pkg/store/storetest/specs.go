package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

func specJSON(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"source":{"type":"sql","table":"users"},"sink":{"type":"webhook"},"rev":%d}`, i))
}

func mustSaveSpec(t *testing.T, s store.Store, p store.SaveFlowSpec) store.FlowSpec {
	t.Helper()
	got, err := s.SaveFlowSpec(ctx(t), p)
	if err != nil {
		t.Fatalf("SaveFlowSpec(%s, create %v, if %d): %v", p.Name, p.Create, p.IfVersion, err)
	}
	return got
}

func wantSpec(t *testing.T, op string, got store.FlowSpec, name string, version int64, spec json.RawMessage) {
	t.Helper()
	if got.Name != name || got.Version != version || !jsonEqual(got.Spec, spec) {
		t.Fatalf("%s: %s v%d %s, want %s v%d %s", op, got.Name, got.Version, got.Spec, name, version, spec)
	}
}

func testFlowSpecs(t *testing.T, s store.Store) {
	created := mustSaveSpec(t, s, store.SaveFlowSpec{
		Name: "orders_sync", Description: "orders → warehouse", Spec: specJSON(1),
		Defaults: json.RawMessage(`{"batch_size":250}`), CreatedBy: "alice", Create: true,
	})
	wantSpec(t, "create", created, "orders_sync", 1, specJSON(1))
	if created.Description != "orders → warehouse" || created.CreatedBy != "alice" ||
		!jsonEqual(created.Defaults, []byte(`{"batch_size":250}`)) || !recent(created.CreatedAt) {
		t.Fatalf("created spec: %+v", created)
	}
	def, err := s.GetDefinition(ctx(t), "orders_sync")
	if err != nil {
		t.Fatalf("GetDefinition of a spec flow: %v", err)
	}
	if def.Kind != store.KindFlow || def.Origin != store.OriginSpec || def.Version != 1 ||
		def.Description != "orders → warehouse" || !jsonEqual(def.Config, specJSON(1)) ||
		!jsonEqual(def.Defaults, []byte(`{"batch_size":250}`)) || !recent(def.UpdatedAt) {
		t.Fatalf("definition of a spec flow: %+v", def)
	}
	fs, err := s.GetFlow(ctx(t), "orders_sync")
	if err != nil || fs.Active || fs.Watermark != "" {
		t.Fatalf("state of a new spec flow: %+v, %v; want inactive without watermark", fs, err)
	}

	// Updates: unconditional, then guarded by the version they replace.
	if _, err := s.SetFlowActive(ctx(t), "orders_sync", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceWatermark(ctx(t), "orders_sync", "", "w1"); err != nil {
		t.Fatal(err)
	}
	v2 := mustSaveSpec(t, s, store.SaveFlowSpec{Name: "orders_sync", Description: "second", Spec: specJSON(2), CreatedBy: "bob"})
	wantSpec(t, "update", v2, "orders_sync", 2, specJSON(2))
	v3 := mustSaveSpec(t, s, store.SaveFlowSpec{Name: "orders_sync", Description: "third", Spec: specJSON(3), IfVersion: 2})
	wantSpec(t, "update if at 2", v3, "orders_sync", 3, specJSON(3))
	if v3.Defaults != nil && !jsonEqual(v3.Defaults, []byte(`null`)) {
		t.Errorf("version saved without defaults has defaults %s", v3.Defaults)
	}
	def, _ = s.GetDefinition(ctx(t), "orders_sync")
	if def.Version != 3 || def.Description != "third" || !jsonEqual(def.Config, specJSON(3)) || def.Origin != store.OriginSpec {
		t.Fatalf("definition after two updates: %+v", def)
	}
	fs, _ = s.GetFlow(ctx(t), "orders_sync")
	if !fs.Active || fs.Watermark != "w1" {
		t.Fatalf("saving a version changed the flow's state: %+v", fs)
	}

	// Conflicts change nothing.
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "orders_sync", Spec: specJSON(9), IfVersion: 2})
	wantErr(t, "SaveFlowSpec at a stale version", err, store.ErrConflict)
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "orders_sync", Spec: specJSON(9), Create: true})
	wantErr(t, "SaveFlowSpec creating an existing flow", err, store.ErrConflict)
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "ghost", Spec: specJSON(9)})
	wantErr(t, "SaveFlowSpec updating an unknown flow", err, store.ErrNotFound)
	if _, err := s.GetDefinition(ctx(t), "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused update created a definition: %v", err)
	}
	_, err = s.UpsertDefinition(ctx(t), store.Definition{Name: "orders_sync", Kind: store.KindFlow, Description: "code"})
	wantErr(t, "UpsertDefinition over a spec flow", err, store.ErrConflict)
	_, err = s.UpsertDefinition(ctx(t), store.Definition{Name: "other", Kind: store.KindFlow, Origin: store.OriginSpec})
	wantErr(t, "UpsertDefinition of origin spec", err, store.ErrConflict)
	if _, err := s.GetDefinition(ctx(t), "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused upsert of origin spec created a definition: %v", err)
	}

	// A code definition's name is taken.
	code, err := s.UpsertDefinition(ctx(t), store.Definition{Name: "code_flow", Kind: store.KindFlow, Description: "in code"})
	if err != nil {
		t.Fatal(err)
	}
	if code.Origin != store.OriginCode || code.Version != 0 {
		t.Fatalf("code definition reads origin %q version %d, want code 0", code.Origin, code.Version)
	}
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "code_flow", Spec: specJSON(1), Create: true})
	wantErr(t, "SaveFlowSpec creating over a code definition", err, store.ErrConflict)
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "code_flow", Spec: specJSON(1)})
	wantErr(t, "SaveFlowSpec updating a code definition", err, store.ErrConflict)
	err = s.DeleteFlowSpec(ctx(t), "code_flow")
	wantErr(t, "DeleteFlowSpec of a code definition", err, store.ErrConflict)
	if got, err := s.GetDefinition(ctx(t), "code_flow"); err != nil || got.Origin != store.OriginCode || got.Description != "in code" {
		t.Fatalf("code definition after refused spec changes: %+v, %v", got, err)
	}
	if _, err := s.GetFlow(ctx(t), "code_flow"); err != nil {
		t.Fatalf("refused DeleteFlowSpec removed a code flow's state: %v", err)
	}
	if vs, err := s.ListFlowSpecs(ctx(t), "code_flow"); err != nil || len(vs) != 0 {
		t.Fatalf("versions of a code flow: %v, %v", vs, err)
	}

	// Versions: by number, latest, newest first.
	got, err := s.GetFlowSpec(ctx(t), "orders_sync", 0)
	if err != nil {
		t.Fatalf("GetFlowSpec(latest): %v", err)
	}
	wantSpec(t, "GetFlowSpec(latest)", got, "orders_sync", 3, specJSON(3))
	got, err = s.GetFlowSpec(ctx(t), "orders_sync", 1)
	if err != nil {
		t.Fatalf("GetFlowSpec(1): %v", err)
	}
	if got.Description != "orders → warehouse" || got.CreatedBy != "alice" {
		t.Fatalf("GetFlowSpec(1): %+v", got)
	}
	wantSpec(t, "GetFlowSpec(1)", got, "orders_sync", 1, specJSON(1))
	_, err = s.GetFlowSpec(ctx(t), "orders_sync", 4)
	wantErr(t, "GetFlowSpec of a version not saved", err, store.ErrNotFound)
	_, err = s.GetFlowSpec(ctx(t), "ghost", 0)
	wantErr(t, "GetFlowSpec of an unknown flow", err, store.ErrNotFound)
	list, err := s.ListFlowSpecs(ctx(t), "orders_sync")
	if err != nil {
		t.Fatalf("ListFlowSpecs: %v", err)
	}
	if len(list) != 3 || list[0].Version != 3 || list[1].Version != 2 || list[2].Version != 1 || list[1].CreatedBy != "bob" {
		t.Fatalf("ListFlowSpecs: %+v, want versions 3, 2, 1", list)
	}
	if list, err := s.ListFlowSpecs(ctx(t), "ghost"); err != nil || len(list) != 0 {
		t.Fatalf("ListFlowSpecs(unknown): %v, %v; want none", list, err)
	}

	// Delete keeps versions and runs; recreating continues the numbering.
	run := mustCreate(t, s, store.NewRun{Definition: "orders_sync", Kind: store.KindFlow, SpecVersion: 3, Options: defaultOptions()})
	mustTransition(t, s, run.ID, store.RunRunning)
	mustTransition(t, s, run.ID, store.RunSucceeded)
	if err := s.DeleteFlowSpec(ctx(t), "orders_sync"); err != nil {
		t.Fatalf("DeleteFlowSpec: %v", err)
	}
	if _, err := s.GetDefinition(ctx(t), "orders_sync"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDefinition after delete: %v, want ErrNotFound", err)
	}
	if _, err := s.GetFlow(ctx(t), "orders_sync"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetFlow after delete: %v, want ErrNotFound", err)
	}
	if flows, _ := s.ListFlows(ctx(t)); len(flows) != 1 || flows[0].Name != "code_flow" {
		t.Fatalf("ListFlows after delete: %+v, want code_flow only", flows)
	}
	if r := mustGetRun(t, s, run.ID); r.SpecVersion != 3 || r.State != store.RunSucceeded {
		t.Fatalf("run of a deleted flow: %+v", r)
	}
	got, err = s.GetFlowSpec(ctx(t), "orders_sync", 0)
	if err != nil {
		t.Fatalf("GetFlowSpec(latest) of a deleted flow: %v", err)
	}
	wantSpec(t, "GetFlowSpec(latest) of a deleted flow", got, "orders_sync", 3, specJSON(3))
	err = s.DeleteFlowSpec(ctx(t), "orders_sync")
	wantErr(t, "DeleteFlowSpec twice", err, store.ErrNotFound)
	_, err = s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "orders_sync", Spec: specJSON(9)})
	wantErr(t, "SaveFlowSpec updating a deleted flow", err, store.ErrNotFound)
	again := mustSaveSpec(t, s, store.SaveFlowSpec{Name: "orders_sync", Spec: specJSON(4), Create: true})
	wantSpec(t, "recreate after delete", again, "orders_sync", 4, specJSON(4))
	if def, _ := s.GetDefinition(ctx(t), "orders_sync"); def.Version != 4 || def.Origin != store.OriginSpec {
		t.Fatalf("recreated definition: %+v", def)
	}
	if fs, _ := s.GetFlow(ctx(t), "orders_sync"); fs.Active || fs.Watermark != "" {
		t.Fatalf("recreated flow kept the deleted one's state: %+v", fs)
	}
	if list, _ := s.ListFlowSpecs(ctx(t), "orders_sync"); len(list) != 4 || list[0].Version != 4 {
		t.Fatalf("versions after recreating: %+v", list)
	}
	err = s.DeleteFlowSpec(ctx(t), "ghost")
	wantErr(t, "DeleteFlowSpec(unknown)", err, store.ErrNotFound)
}

func testFlowSpecRejectsBadInput(t *testing.T, s store.Store) {
	mustSaveSpec(t, s, store.SaveFlowSpec{Name: "kept", Spec: specJSON(1), Create: true})
	bad := []struct {
		field string
		p     store.SaveFlowSpec
	}{
		{"name", store.SaveFlowSpec{Spec: specJSON(1), Create: true}},
		{"spec", store.SaveFlowSpec{Name: "kept", Spec: json.RawMessage(`[1,2]`)}},
		{"spec", store.SaveFlowSpec{Name: "kept", Spec: json.RawMessage(`null`)}},
		{"spec", store.SaveFlowSpec{Name: "new", Spec: json.RawMessage(`{`), Create: true}},
		{"spec", store.SaveFlowSpec{Name: "new", Create: true}},
		{"defaults", store.SaveFlowSpec{Name: "kept", Spec: specJSON(2), Defaults: json.RawMessage(`{`)}},
		{"if_version", store.SaveFlowSpec{Name: "kept", Spec: specJSON(2), IfVersion: -1}},
	}
	for _, b := range bad {
		_, err := s.SaveFlowSpec(ctx(t), b.p)
		wantArgumentError(t, "SaveFlowSpec with bad "+b.field, err, b.field)
	}
	if list, err := s.ListFlowSpecs(ctx(t), "kept"); err != nil || len(list) != 1 {
		t.Fatalf("bad input stored versions: %+v, %v", list, err)
	}
	if def, err := s.GetDefinition(ctx(t), "kept"); err != nil || def.Version != 1 || !jsonEqual(def.Config, specJSON(1)) {
		t.Fatalf("bad input changed the definition: %+v, %v", def, err)
	}
	if defs, err := s.ListDefinitions(ctx(t)); err != nil || len(defs) != 1 {
		t.Fatalf("bad input created definitions: %+v, %v", defs, err)
	}
	if flows, err := s.ListFlows(ctx(t)); err != nil || len(flows) != 1 {
		t.Fatalf("bad input created flows: %+v, %v", flows, err)
	}
	_, err := s.GetFlowSpec(ctx(t), "kept", -1)
	wantArgumentError(t, "GetFlowSpec(-1)", err, "version")
}

func flowRun(name string) store.NewRun {
	return store.NewRun{Definition: name, Kind: store.KindFlow, CreatedBy: "runtime", Options: defaultOptions()}
}

func wantFlowBusy(t *testing.T, op string, err error, flow string, runID int64, state store.RunState) {
	t.Helper()
	var fb *store.FlowBusyError
	if !errors.As(err, &fb) {
		t.Fatalf("%s: got %v, want a *store.FlowBusyError", op, err)
	}
	if fb.Flow != flow || fb.RunID != runID || fb.State != state {
		t.Fatalf("%s: FlowBusyError{%q, %d, %s}, want {%q, %d, %s}", op, fb.Flow, fb.RunID, fb.State, flow, runID, state)
	}
	wantErr(t, op, err, store.ErrFlowBusy, store.ErrConflict)
}

// countRuns counts the runs of a definition.
func countRuns(t *testing.T, s store.Store, def string) int {
	t.Helper()
	p, err := s.ListRuns(ctx(t), store.RunFilter{Definition: def, Limit: store.MaxLimit})
	if err != nil {
		t.Fatalf("ListRuns(%s): %v", def, err)
	}
	return len(p.Items)
}

func testFlowBusyCreateRun(t *testing.T, s store.Store) {
	registerFlow(t, s, "busy")
	registerFlow(t, s, "neighbour")
	first := mustCreate(t, s, flowRun("busy"))
	_, err := s.CreateRun(ctx(t), flowRun("busy"))
	wantFlowBusy(t, "second run of a flow while the first is scheduled", err, "busy", first.ID, store.RunScheduled)

	// Other flows and backfills are not held up.
	mustCreate(t, s, flowRun("neighbour"))
	bf := flowRun("busy")
	bf.Kind = store.KindBackfill
	mustCreate(t, s, bf)
	mustCreate(t, s, bf)

	steps := []store.RunState{store.RunRunning, store.RunPaused, store.RunRunning}
	for _, st := range steps {
		mustTransition(t, s, first.ID, st)
		_, err := s.CreateRun(ctx(t), flowRun("busy"))
		wantFlowBusy(t, "second run of a flow while the first is "+string(st), err, "busy", first.ID, st)
	}
	// Cancelling: a batch still running.
	b := plan(t, s, first.ID, 2)[0]
	mustClaim(t, s, b, "tok")
	if r, err := s.CancelRun(ctx(t), first.ID); err != nil || r.State != store.RunCancelling {
		t.Fatalf("CancelRun: %+v, %v; want cancelling", r, err)
	}
	_, err = s.CreateRun(ctx(t), flowRun("busy"))
	wantFlowBusy(t, "second run of a flow while the first is cancelling", err, "busy", first.ID, store.RunCancelling)
	if _, err := s.ExpireClaims(ctx(t), first.ID, "w-tok"); err != nil {
		t.Fatal(err)
	}
	if r, err := s.CancelExpiredBatches(ctx(t), first.ID); err != nil || r.State != store.RunCancelled {
		t.Fatalf("CancelExpiredBatches: %+v, %v; want cancelled", r, err)
	}
	if n := countRuns(t, s, "busy"); n != 3 {
		t.Fatalf("refused creations stored runs: %d runs of busy, want 3 (1 flow run, 2 backfills)", n)
	}

	// Once it is terminal the next run may start, whatever way it ended.
	second := mustCreate(t, s, flowRun("busy"))
	_, err = s.CancelRun(ctx(t), second.ID)
	if err != nil {
		t.Fatalf("CancelRun of a scheduled run: %v", err)
	}
	third := mustCreate(t, s, flowRun("busy"))
	mustTransition(t, s, third.ID, store.RunRunning)
	mustTransition(t, s, third.ID, store.RunFailed)
	fourth := mustCreate(t, s, flowRun("busy"))
	mustTransition(t, s, fourth.ID, store.RunRunning)
	mustTransition(t, s, fourth.ID, store.RunSucceeded)
	fifth := mustCreate(t, s, flowRun("busy"))

	// A failed run cannot come back while another is live, by a transition
	// or a retry.
	_, err = s.TransitionRun(ctx(t), third.ID, store.RunRunning, nil)
	wantFlowBusy(t, "TransitionRun of a failed flow run back to running", err, "busy", fifth.ID, store.RunScheduled)
	if r := mustGetRun(t, s, third.ID); r.State != store.RunFailed {
		t.Fatalf("refused transition moved the run to %s", r.State)
	}
	if _, err := s.CancelRun(ctx(t), fifth.ID); err != nil {
		t.Fatal(err)
	}
	if r := mustTransition(t, s, third.ID, store.RunRunning); r.State != store.RunRunning {
		t.Fatalf("failed run back to running: %s", r.State)
	}
}

func testFlowBusyRetryAndDelete(t *testing.T, s store.Store) {
	mustSaveSpec(t, s, store.SaveFlowSpec{Name: "retried", Spec: specJSON(1), Create: true})
	failed := mustCreate(t, s, flowRun("retried"))
	mustTransition(t, s, failed.ID, store.RunRunning)
	bs := plan(t, s, failed.ID, 2)
	for i, b := range bs {
		tok := fmt.Sprint("t", i)
		mustClaim(t, s, b, tok)
		if _, err := s.FailBatch(ctx(t), failed.ID, b.Seq, tok, store.Failure{Message: "boom", Final: true}); err != nil {
			t.Fatal(err)
		}
	}
	mustTransition(t, s, failed.ID, store.RunFailed)
	live := mustCreate(t, s, flowRun("retried"))
	mustTransition(t, s, live.ID, store.RunRunning)

	_, err := s.RetryBatches(ctx(t), failed.ID, nil)
	wantFlowBusy(t, "RetryBatches of a failed flow run while another runs", err, "retried", live.ID, store.RunRunning)
	seq := bs[0].Seq
	_, err = s.RetryBatches(ctx(t), failed.ID, &seq)
	wantFlowBusy(t, "RetryBatches of one batch of a failed flow run while another runs", err, "retried", live.ID, store.RunRunning)
	if r := assertCounters(t, s, failed.ID, map[store.BatchState]int64{store.BatchFailed: 2}); r.State != store.RunFailed {
		t.Fatalf("refused retry moved the run to %s", r.State)
	}

	err = s.DeleteFlowSpec(ctx(t), "retried")
	wantFlowBusy(t, "DeleteFlowSpec while a run is live", err, "retried", live.ID, store.RunRunning)
	if _, err := s.GetDefinition(ctx(t), "retried"); err != nil {
		t.Fatalf("refused delete removed the definition: %v", err)
	}
	if _, err := s.GetFlow(ctx(t), "retried"); err != nil {
		t.Fatalf("refused delete removed the flow's state: %v", err)
	}

	mustTransition(t, s, live.ID, store.RunSucceeded)
	n, err := s.RetryBatches(ctx(t), failed.ID, nil)
	if err != nil || n != 2 {
		t.Fatalf("RetryBatches once the other run ended: %d, %v; want 2", n, err)
	}
	if r := mustGetRun(t, s, failed.ID); r.State != store.RunRunning {
		t.Fatalf("retried run is %s, want running", r.State)
	}
	_, err = s.CreateRun(ctx(t), flowRun("retried"))
	wantFlowBusy(t, "CreateRun while a retried run is live", err, "retried", failed.ID, store.RunRunning)
	err = s.DeleteFlowSpec(ctx(t), "retried")
	wantFlowBusy(t, "DeleteFlowSpec while a retried run is live", err, "retried", failed.ID, store.RunRunning)

	// Retrying batches of a run that is still live is not a second run.
	b := mustGetBatch(t, s, failed.ID, bs[0].Seq)
	mustClaim(t, s, b, "again")
	if _, err := s.FailBatch(ctx(t), failed.ID, b.Seq, "again", store.Failure{Message: "boom", Final: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RetryBatches(ctx(t), failed.ID, nil); err != nil || n != 1 {
		t.Fatalf("RetryBatches of a running flow run: %d, %v; want 1", n, err)
	}

	if r, err := s.CancelRun(ctx(t), failed.ID); err != nil || r.State != store.RunCancelled {
		t.Fatalf("CancelRun: %+v, %v", r, err)
	}
	if err := s.DeleteFlowSpec(ctx(t), "retried"); err != nil {
		t.Fatalf("DeleteFlowSpec once no run is live: %v", err)
	}
}

// testRaceCreateFlowRun: 20 goroutines create a run of one flow at once;
// exactly one succeeds, the others are told the flow is busy with it.
func testRaceCreateFlowRun(t *testing.T, s store.Store) {
	const n = 20
	registerFlow(t, s, "raced_flow")
	var wins atomic.Int64
	var winner atomic.Int64
	busy := make([]int64, n)
	race(n, func(i int) {
		r, err := s.CreateRun(ctx(t), flowRun("raced_flow"))
		var fb *store.FlowBusyError
		switch {
		case err == nil:
			wins.Add(1)
			winner.Store(r.ID)
		case errors.As(err, &fb):
			busy[i] = fb.RunID
		default:
			t.Errorf("CreateRun %d: %v", i, err)
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d of %d concurrent runs of one flow were created, want 1", wins.Load(), n)
	}
	for i, id := range busy {
		if id != 0 && id != winner.Load() {
			t.Errorf("CreateRun %d was refused for run %d, want the winner %d", i, id, winner.Load())
		}
	}
	if got := countRuns(t, s, "raced_flow"); got != 1 {
		t.Fatalf("%d runs of the flow stored, want 1", got)
	}
}

// testRaceSaveFlowSpec: concurrent updates of one spec flow each get their
// own version, and concurrent creations of one name let one through.
func testRaceSaveFlowSpec(t *testing.T, s store.Store) {
	const n = 10
	mustSaveSpec(t, s, store.SaveFlowSpec{Name: "edited", Spec: specJSON(0), Create: true})
	var creates atomic.Int64
	race(n, func(i int) {
		if _, err := s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "edited", Spec: specJSON(i + 1)}); err != nil {
			t.Errorf("SaveFlowSpec %d: %v", i, err)
		}
		_, err := s.SaveFlowSpec(ctx(t), store.SaveFlowSpec{Name: "created", Spec: specJSON(i), Create: true})
		if err == nil {
			creates.Add(1)
		} else if !errors.Is(err, store.ErrConflict) {
			t.Errorf("SaveFlowSpec(create) %d: %v", i, err)
		}
	})
	list, err := s.ListFlowSpecs(ctx(t), "edited")
	if err != nil || len(list) != n+1 {
		t.Fatalf("versions after %d concurrent saves: %d, %v; want %d", n, len(list), err, n+1)
	}
	for i, v := range list {
		if v.Version != int64(n+1-i) {
			t.Fatalf("versions after concurrent saves: %d at %d, want %d", v.Version, i, n+1-i)
		}
	}
	if def, _ := s.GetDefinition(ctx(t), "edited"); def.Version != n+1 || !jsonEqual(def.Config, list[0].Spec) {
		t.Fatalf("definition after concurrent saves: version %d config %s, want %d %s", def.Version, def.Config, n+1, list[0].Spec)
	}
	if creates.Load() != 1 {
		t.Fatalf("%d concurrent creations of one flow succeeded, want 1", creates.Load())
	}
	if list, _ := s.ListFlowSpecs(ctx(t), "created"); len(list) != 1 || list[0].Version != 1 {
		t.Fatalf("versions after concurrent creations: %+v", list)
	}
}

func testRunSpecVersion(t *testing.T, s store.Store) {
	registerFlow(t, s, "versioned")
	n := flowRun("versioned")
	n.SpecVersion = 7
	created := mustCreate(t, s, n)
	if created.SpecVersion != 7 {
		t.Fatalf("CreateRun: spec version %d, want 7", created.SpecVersion)
	}
	if got := mustGetRun(t, s, created.ID); got.SpecVersion != 7 {
		t.Fatalf("GetRun: spec version %d, want 7", got.SpecVersion)
	}
	if got := mustTransition(t, s, created.ID, store.RunRunning); got.SpecVersion != 7 {
		t.Fatalf("TransitionRun: spec version %d, want 7", got.SpecVersion)
	}
	code := mustCreate(t, s, newRun("code_backfill"))
	p, err := s.ListRuns(ctx(t), store.RunFilter{})
	if err != nil || len(p.Items) != 2 {
		t.Fatalf("ListRuns: %+v, %v", p.Items, err)
	}
	if p.Items[0].ID != code.ID || p.Items[0].SpecVersion != 0 || p.Items[1].SpecVersion != 7 {
		t.Fatalf("ListRuns: spec versions %d, %d; want 0, 7", p.Items[0].SpecVersion, p.Items[1].SpecVersion)
	}
	bad := flowRun("other")
	bad.SpecVersion = -1
	_, err = s.CreateRun(ctx(t), bad)
	wantArgumentError(t, "CreateRun with a negative spec version", err, "spec_version")
}

func testRecordMissedTick(t *testing.T, s store.Store) {
	registerFlow(t, s, "ticking")
	fs, err := s.GetFlow(ctx(t), "ticking")
	if err != nil || fs.MissedTicks != 0 || fs.LastMissedTick != nil {
		t.Fatalf("new flow: %+v, %v; want no missed ticks", fs, err)
	}
	if _, err := s.AdvanceWatermark(ctx(t), "ticking", "", "w"); err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 12, 2, 6, 0, 0, 123456789, time.FixedZone("CET", 3600))
	fs, err = s.RecordMissedTick(ctx(t), "ticking", first)
	if err != nil {
		t.Fatalf("RecordMissedTick: %v", err)
	}
	want := first.UTC().Truncate(time.Microsecond)
	if fs.MissedTicks != 1 || fs.LastMissedTick == nil || !fs.LastMissedTick.Equal(want) || fs.LastMissedTick.Location() != time.UTC || fs.Watermark != "w" {
		t.Fatalf("after one missed tick: %+v, want 1 at %v", fs, want)
	}
	second := first.Add(time.Minute)
	if _, err := s.RecordMissedTick(ctx(t), "ticking", second); err != nil {
		t.Fatal(err)
	}
	fs, err = s.GetFlow(ctx(t), "ticking")
	want = second.UTC().Truncate(time.Microsecond)
	if err != nil || fs.MissedTicks != 2 || fs.LastMissedTick == nil || !fs.LastMissedTick.Equal(want) || fs.Watermark != "w" {
		t.Fatalf("GetFlow after two missed ticks: %+v, %v; want 2 at %v", fs, err, want)
	}
	if flows, _ := s.ListFlows(ctx(t)); len(flows) != 1 || flows[0].MissedTicks != 2 {
		t.Fatalf("ListFlows: %+v", flows)
	}
	_, err = s.RecordMissedTick(ctx(t), "ghost", first)
	wantErr(t, "RecordMissedTick(unknown)", err, store.ErrNotFound)
}
