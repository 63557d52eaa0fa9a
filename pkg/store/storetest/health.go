package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/store"
)

// A run keeps its health checks as they were given, every kind with its
// settings; a run without any reads nil.
func testRunHealthChecks(t *testing.T, s store.Store) {
	n := newRun("checked")
	n.Options.HealthChecks = []store.HealthCheck{
		{Kind: store.HealthReplicationLag, MaxSeconds: 2.5},
		{Kind: store.HealthAutovacuum, Table: "public.users", Connection: "replica"},
		{Kind: store.HealthLockWaits, Max: 3, Name: "waiters"},
		{Kind: store.HealthSQL, Query: "SELECT NOT paused FROM maintenance WHERE name = 'ü'"},
	}
	created := mustCreate(t, s, n)
	got, err := s.GetRun(ctx(t), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.Run{created, got} {
		if diff := cmp.Diff(n.Options.HealthChecks, r.Options.HealthChecks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
	}
	plain := mustCreate(t, s, newRun("unchecked"))
	if got, err := s.GetRun(ctx(t), plain.ID); err != nil || got.Options.HealthChecks != nil || got.Held != nil {
		t.Fatalf("run without checks: checks %+v, held %+v, %v; want nil", got.Options.HealthChecks, got.Held, err)
	}
}

// Bad health checks are refused naming the field, and create nothing.
func testCreateRunRejectsBadHealthChecks(t *testing.T, s store.Store) {
	tests := []struct {
		field string
		check store.HealthCheck
	}{
		{"health_checks[0].kind", store.HealthCheck{Kind: "disk_space"}},
		{"health_checks[0].max_seconds", store.HealthCheck{Kind: store.HealthReplicationLag}},
		{"health_checks[0].max_seconds", store.HealthCheck{Kind: store.HealthReplicationLag, MaxSeconds: -1}},
		{"health_checks[0].table", store.HealthCheck{Kind: store.HealthAutovacuum}},
		{"health_checks[0].table", store.HealthCheck{Kind: store.HealthAutovacuum, Table: "users; DROP TABLE users"}},
		{"health_checks[0].table", store.HealthCheck{Kind: store.HealthAutovacuum, Table: "a.b.c"}},
		{"health_checks[0].max", store.HealthCheck{Kind: store.HealthLockWaits, Max: -1}},
		{"health_checks[0].table", store.HealthCheck{Kind: store.HealthLockWaits, Table: "users"}},
		{"health_checks[0].query", store.HealthCheck{Kind: store.HealthSQL}},
		{"health_checks[0].connection", store.HealthCheck{Kind: store.HealthLockWaits, Connection: "a b"}},
	}
	for i, tt := range tests {
		n := newRun("bad_checks")
		n.Options.HealthChecks = []store.HealthCheck{tt.check}
		_, err := s.CreateRun(ctx(t), n)
		wantArgumentError(t, fmt.Sprintf("case %d: CreateRun with bad %s", i, tt.field), err, tt.field)
	}
	n := newRun("bad_checks")
	for range store.MaxHealthChecks + 1 {
		n.Options.HealthChecks = append(n.Options.HealthChecks, store.HealthCheck{Kind: store.HealthLockWaits})
	}
	_, err := s.CreateRun(ctx(t), n)
	wantArgumentError(t, "too many checks", err, "health_checks")
	page, err := s.ListRuns(ctx(t), store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Fatalf("bad health checks created %d runs, want none", len(page.Items))
	}
}

// SetRunHold records why a run is held, on the run every reader sees, and
// clears it; updated_at moves; an unknown run is ErrNotFound.
func testSetRunHold(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("held"))
	mustTransition(t, s, r.ID, store.RunRunning)
	since := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	h := &store.RunHold{Reason: "replication lag 12.3 s > 5 s", Check: "replication_lag", Since: since}
	before, err := s.GetRun(ctx(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if err := s.SetRunHold(ctx(t), r.ID, h); err != nil {
		t.Fatalf("SetRunHold: %v", err)
	}
	got, err := s.GetRun(ctx(t), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := since.UTC().Truncate(time.Microsecond)
	if got.Held == nil || got.Held.Reason != h.Reason || got.Held.Check != h.Check || !got.Held.Since.Equal(want) || got.Held.Since.Location() != time.UTC {
		t.Fatalf("held %+v, want %q by %s since %v (UTC)", got.Held, h.Reason, h.Check, want)
	}
	if !got.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("updated_at %v did not move from %v", got.UpdatedAt, before.UpdatedAt)
	}
	if got.State != store.RunRunning || got.Counters != before.Counters {
		t.Errorf("SetRunHold changed the run: %s %+v", got.State, got.Counters)
	}
	page, err := s.ListRuns(ctx(t), store.RunFilter{States: []store.RunState{store.RunRunning}})
	if err != nil || len(page.Items) != 1 || page.Items[0].Held == nil || page.Items[0].Held.Reason != h.Reason {
		t.Fatalf("ListRuns: %+v, %v; want the run with its hold", page.Items, err)
	}
	long := &store.RunHold{Reason: strings.Repeat("é", store.MaxHoldReason), Check: "sql", Since: since}
	if err := s.SetRunHold(ctx(t), r.ID, long); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRun(ctx(t), r.ID); err != nil || len(got.Held.Reason) > store.MaxHoldReason || !strings.HasSuffix(got.Held.Reason, "…") {
		t.Fatalf("a long reason: %d bytes, %v; want cut to at most %d ending in …", len(got.Held.Reason), err, store.MaxHoldReason)
	}
	if err := s.SetRunHold(ctx(t), r.ID, nil); err != nil {
		t.Fatalf("SetRunHold(nil): %v", err)
	}
	if got, err := s.GetRun(ctx(t), r.ID); err != nil || got.Held != nil {
		t.Fatalf("after clearing: held %+v, %v; want nil", got.Held, err)
	}
	if err := s.SetRunHold(ctx(t), r.ID+1000, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetRunHold on an unknown run: %v, want ErrNotFound", err)
	}
}
