package storetest

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/dripflow/dripflow/pkg/store"
)

func testDefinitions(t *testing.T, s store.Store) {
	defs := []store.Definition{
		{Name: "user_sync", Kind: store.KindFlow, Description: "active users → backups",
			ParamsSchema: json.RawMessage(`{"type":"object"}`), Defaults: json.RawMessage(`{"batch_size":500}`),
			Config: json.RawMessage(`{"source":{"type":"sql"}}`)},
		{Name: "add_default_role_to_users", Kind: store.KindBackfill, Description: "set role"},
	}
	for _, d := range defs {
		got, err := s.UpsertDefinition(ctx(t), d)
		if err != nil {
			t.Fatalf("UpsertDefinition(%s): %v", d.Name, err)
		}
		if !recent(got.UpdatedAt) {
			t.Errorf("UpsertDefinition(%s): updated_at %v", d.Name, got.UpdatedAt)
		}
	}
	got, err := s.GetDefinition(ctx(t), "user_sync")
	if err != nil {
		t.Fatalf("GetDefinition: %v", err)
	}
	if got.Kind != store.KindFlow || got.Description != "active users → backups" ||
		!jsonEqual(got.ParamsSchema, defs[0].ParamsSchema) || !jsonEqual(got.Defaults, defs[0].Defaults) || !jsonEqual(got.Config, defs[0].Config) {
		t.Fatalf("GetDefinition: %+v", got)
	}
	list, err := s.ListDefinitions(ctx(t))
	if err != nil {
		t.Fatalf("ListDefinitions: %v", err)
	}
	if len(list) != 2 || list[0].Name != "add_default_role_to_users" || list[1].Name != "user_sync" {
		t.Fatalf("ListDefinitions: %v, want both ordered by name", list)
	}
	_, err = s.GetDefinition(ctx(t), "nope")
	wantErr(t, "GetDefinition(unknown)", err, store.ErrNotFound)

	// Registering a flow creates its state; a backfill has none.
	fs, err := s.GetFlow(ctx(t), "user_sync")
	if err != nil {
		t.Fatalf("GetFlow after registering: %v", err)
	}
	if fs.Active || fs.Watermark != "" || fs.WatermarkUpdatedAt != nil {
		t.Fatalf("new flow state %+v, want inactive without watermark", fs)
	}
	_, err = s.GetFlow(ctx(t), "add_default_role_to_users")
	wantErr(t, "GetFlow(backfill)", err, store.ErrNotFound)

	// Upserting again replaces metadata but keeps the flow's state.
	if _, err := s.SetFlowActive(ctx(t), "user_sync", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceWatermark(ctx(t), "user_sync", "", "2026-01-01T00:00:00Z,42"); err != nil {
		t.Fatal(err)
	}
	changed := defs[0]
	changed.Description = "v2"
	if _, err := s.UpsertDefinition(ctx(t), changed); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDefinition(ctx(t), "user_sync"); got.Description != "v2" {
		t.Fatalf("description after upsert %q, want v2", got.Description)
	}
	fs, err = s.GetFlow(ctx(t), "user_sync")
	if err != nil || !fs.Active || fs.Watermark != "2026-01-01T00:00:00Z,42" {
		t.Fatalf("flow state after re-registering: %+v, %v; want active with its watermark", fs, err)
	}
	if list, _ := s.ListDefinitions(ctx(t)); len(list) != 2 {
		t.Fatalf("upsert duplicated a definition: %d definitions", len(list))
	}
}

func testDefinitionRejectsBadInput(t *testing.T, s store.Store) {
	bad := []struct {
		field string
		d     store.Definition
	}{
		{"name", store.Definition{Kind: store.KindFlow}},
		{"kind", store.Definition{Name: "x", Kind: "cron"}},
		{"params_schema", store.Definition{Name: "x", Kind: store.KindBackfill, ParamsSchema: json.RawMessage(`{`)}},
	}
	for _, b := range bad {
		_, err := s.UpsertDefinition(ctx(t), b.d)
		wantArgumentError(t, "UpsertDefinition with bad "+b.field, err, b.field)
	}
	if list, err := s.ListDefinitions(ctx(t)); err != nil || len(list) != 0 {
		t.Fatalf("bad definitions stored: %v, %v", list, err)
	}
	if flows, err := s.ListFlows(ctx(t)); err != nil || len(flows) != 0 {
		t.Fatalf("bad definitions created flows: %v, %v", flows, err)
	}
}

func registerFlow(t *testing.T, s store.Store, name string) {
	t.Helper()
	if _, err := s.UpsertDefinition(ctx(t), store.Definition{Name: name, Kind: store.KindFlow}); err != nil {
		t.Fatalf("UpsertDefinition(%s): %v", name, err)
	}
}

func testFlowActivation(t *testing.T, s store.Store) {
	registerFlow(t, s, "b_flow")
	registerFlow(t, s, "a_flow")
	on, err := s.SetFlowActive(ctx(t), "b_flow", true)
	if err != nil || !on.Active || on.Name != "b_flow" {
		t.Fatalf("SetFlowActive(true): %+v, %v", on, err)
	}
	flows, err := s.ListFlows(ctx(t))
	if err != nil {
		t.Fatalf("ListFlows: %v", err)
	}
	if len(flows) != 2 || flows[0].Name != "a_flow" || flows[0].Active || flows[1].Name != "b_flow" || !flows[1].Active {
		t.Fatalf("ListFlows: %+v", flows)
	}
	off, err := s.SetFlowActive(ctx(t), "b_flow", false)
	if err != nil || off.Active {
		t.Fatalf("SetFlowActive(false): %+v, %v", off, err)
	}
	if got, _ := s.GetFlow(ctx(t), "b_flow"); got.Active {
		t.Fatalf("deactivated flow is still active")
	}
	_, err = s.SetFlowActive(ctx(t), "ghost", true)
	wantErr(t, "SetFlowActive(unknown)", err, store.ErrNotFound)
	_, err = s.GetFlow(ctx(t), "ghost")
	wantErr(t, "GetFlow(unknown)", err, store.ErrNotFound)
}

func testWatermarks(t *testing.T, s store.Store) {
	registerFlow(t, s, "sync")
	fs, err := s.AdvanceWatermark(ctx(t), "sync", "", "2026-11-01T10:00:00.000001Z,17")
	if err != nil {
		t.Fatalf("AdvanceWatermark from empty: %v", err)
	}
	if fs.Watermark != "2026-11-01T10:00:00.000001Z,17" || fs.WatermarkUpdatedAt == nil || !recent(*fs.WatermarkUpdatedAt) {
		t.Fatalf("advanced flow: %+v", fs)
	}
	_, err = s.AdvanceWatermark(ctx(t), "sync", "", "2026-11-02T00:00:00Z,1")
	wantErr(t, "AdvanceWatermark from a stale value", err, store.ErrConflict)
	if got, _ := s.GetFlow(ctx(t), "sync"); got.Watermark != "2026-11-01T10:00:00.000001Z,17" {
		t.Fatalf("stale advance changed the watermark to %q", got.Watermark)
	}
	fs, err = s.AdvanceWatermark(ctx(t), "sync", "2026-11-01T10:00:00.000001Z,17", "2026-11-02T00:00:00Z,99")
	if err != nil || fs.Watermark != "2026-11-02T00:00:00Z,99" {
		t.Fatalf("second advance: %+v, %v", fs, err)
	}
	if got, _ := s.GetFlow(ctx(t), "sync"); got.Watermark != "2026-11-02T00:00:00Z,99" {
		t.Fatalf("stored watermark %q", got.Watermark)
	}
	_, err = s.AdvanceWatermark(ctx(t), "nope", "", "x")
	wantErr(t, "AdvanceWatermark(unknown flow)", err, store.ErrNotFound)
}

func testRaceWatermark(t *testing.T, s store.Store) {
	registerFlow(t, s, "raced")
	var wins atomic.Int64
	race(racers, func(i int) {
		_, err := s.AdvanceWatermark(ctx(t), "raced", "", "w")
		if err == nil {
			wins.Add(1)
		} else if !errors.Is(err, store.ErrConflict) {
			t.Errorf("AdvanceWatermark: %v", err)
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d watermark advances from the same value won, want 1", wins.Load())
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
