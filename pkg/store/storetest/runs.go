package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/store"
)

func testCreateAndGetRun(t *testing.T, s store.Store) {
	startAt := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)
	n := store.NewRun{
		Definition: "fix_user_emails",
		Kind:       store.KindFlow,
		Params:     json.RawMessage(`{"domain":"example.com","limit":10}`),
		CreatedBy:  "bob",
		Options: store.RunOptions{
			BatchSize: 500, MaxAttempts: 5, MaxInFlight: 7, Sleep: 250 * time.Millisecond,
			RowsPerSecond: 1000, BatchTimeout: 30 * time.Second, ErrorBudget: 3,
		},
		StartAt: &startAt,
	}
	created := mustCreate(t, s, n)
	if created.ID <= 0 {
		t.Fatalf("CreateRun: id %d, want > 0", created.ID)
	}
	if created.State != store.RunScheduled {
		t.Errorf("CreateRun: state %s, want scheduled", created.State)
	}
	if created.Definition != n.Definition || created.Kind != n.Kind || created.CreatedBy != "bob" {
		t.Errorf("CreateRun: got definition/kind/created_by %q/%q/%q", created.Definition, created.Kind, created.CreatedBy)
	}
	if !jsonEqual(created.Params, n.Params) {
		t.Errorf("CreateRun: params %s, want %s", created.Params, n.Params)
	}
	if diff := cmp.Diff(n.Options, created.Options); diff != "" {
		t.Errorf("CreateRun: options (-want +got):\n%s", diff)
	}
	if created.StartAt == nil || !created.StartAt.Equal(startAt) {
		t.Errorf("CreateRun: start_at %v, want %v", created.StartAt, startAt)
	}
	if created.Total != -1 || created.TotalEstimated {
		t.Errorf("CreateRun: total %d (estimated %v), want -1", created.Total, created.TotalEstimated)
	}
	if created.Counters != (store.Counters{}) {
		t.Errorf("CreateRun: counters %+v, want zero", created.Counters)
	}
	if created.PlanCursor != "" || created.PlanDone {
		t.Errorf("CreateRun: plan cursor %q done %v, want empty", created.PlanCursor, created.PlanDone)
	}
	if !recent(created.CreatedAt) || !recent(created.UpdatedAt) {
		t.Errorf("CreateRun: created_at %v updated_at %v, want now", created.CreatedAt, created.UpdatedAt)
	}
	if created.StartedAt != nil || created.FinishedAt != nil {
		t.Errorf("CreateRun: started_at %v finished_at %v, want nil", created.StartedAt, created.FinishedAt)
	}

	got := mustGetRun(t, s, created.ID)
	if !jsonEqual(got.Params, created.Params) {
		t.Errorf("GetRun: params %s, want %s", got.Params, created.Params)
	}
	got.Params, created.Params = nil, nil
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GetRun differs from CreateRun (-create +get):\n%s", diff)
	}

	// Runs get distinct, increasing ids; nil params are stored as {}.
	second := mustCreate(t, s, store.NewRun{Definition: "x", Kind: store.KindBackfill, Options: defaultOptions()})
	if second.ID <= created.ID {
		t.Errorf("second run id %d, want > %d", second.ID, created.ID)
	}
	if !jsonEqual(mustGetRun(t, s, second.ID).Params, []byte(`{}`)) {
		t.Errorf("nil params stored as %s, want {}", mustGetRun(t, s, second.ID).Params)
	}
}

func testCreateRunRejectsBadInput(t *testing.T, s store.Store) {
	tests := []struct {
		field  string
		mutate func(*store.NewRun)
	}{
		{"definition", func(n *store.NewRun) { n.Definition = "" }},
		{"kind", func(n *store.NewRun) { n.Kind = "job" }},
		{"params", func(n *store.NewRun) { n.Params = json.RawMessage(`[1,2]`) }},
		{"params", func(n *store.NewRun) { n.Params = json.RawMessage(`{"a":`) }},
		{"batch_size", func(n *store.NewRun) { n.Options.BatchSize = 0 }},
		{"batch_size", func(n *store.NewRun) { n.Options.BatchSize = store.MaxBatchSize + 1 }},
		{"max_attempts", func(n *store.NewRun) { n.Options.MaxAttempts = 0 }},
		{"max_in_flight", func(n *store.NewRun) { n.Options.MaxInFlight = -1 }},
		{"sleep", func(n *store.NewRun) { n.Options.Sleep = -time.Second }},
		{"rows_per_second", func(n *store.NewRun) { n.Options.RowsPerSecond = -5 }},
		{"batch_timeout", func(n *store.NewRun) { n.Options.BatchTimeout = -time.Second }},
		{"error_budget", func(n *store.NewRun) { n.Options.ErrorBudget = -1 }},
	}
	for i, tt := range tests {
		n := newRun("bad_input")
		tt.mutate(&n)
		_, err := s.CreateRun(ctx(t), n)
		wantArgumentError(t, fmt.Sprintf("case %d: CreateRun with bad %s", i, tt.field), err, tt.field)
	}
	page, err := s.ListRuns(ctx(t), store.RunFilter{})
	if err != nil {
		t.Fatalf("ListRuns: %v", err)
	}
	if len(page.Items) != 0 {
		t.Fatalf("bad input created %d runs, want none", len(page.Items))
	}
}

func testRunNotFound(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("exists"))
	for _, id := range []int64{r.ID + 1000, 0, -1} {
		_, err := s.GetRun(ctx(t), id)
		wantErr(t, fmt.Sprintf("GetRun(%d)", id), err, store.ErrNotFound)
		_, err = s.TransitionRun(ctx(t), id, store.RunRunning, nil)
		wantErr(t, fmt.Sprintf("TransitionRun(%d)", id), err, store.ErrNotFound)
		_, err = s.CancelRun(ctx(t), id)
		wantErr(t, fmt.Sprintf("CancelRun(%d)", id), err, store.ErrNotFound)
		err = s.SetRunTotal(ctx(t), id, 10, false)
		wantErr(t, fmt.Sprintf("SetRunTotal(%d)", id), err, store.ErrNotFound)
		_, err = s.RetryBatches(ctx(t), id, nil)
		wantErr(t, fmt.Sprintf("RetryBatches(%d)", id), err, store.ErrNotFound)
		_, err = s.AppendBatches(ctx(t), id, store.PlanStep{To: keyOf(1), Batches: ranges(0, 1)})
		wantErr(t, fmt.Sprintf("AppendBatches(%d)", id), err, store.ErrNotFound)
		_, err = s.ListBatches(ctx(t), id, store.BatchFilter{})
		wantErr(t, fmt.Sprintf("ListBatches(%d)", id), err, store.ErrNotFound)
	}
	_, err := s.TransitionRun(ctx(t), r.ID, store.RunState("exploded"), nil)
	wantErr(t, "TransitionRun to an unknown state", err, store.ErrInvalidArgument)
	if got := mustGetRun(t, s, r.ID); got.State != store.RunScheduled {
		t.Fatalf("after refused transitions the run is %s, want scheduled", got.State)
	}
}

// reachRunState creates a run and brings it to state st by legal moves.
func reachRunState(t *testing.T, s store.Store, st store.RunState) store.Run {
	t.Helper()
	r := mustCreate(t, s, newRun("reach_"+string(st)))
	switch st {
	case store.RunScheduled:
		return r
	case store.RunCancelled:
		return mustTransition(t, s, r.ID, store.RunCancelled)
	}
	r = mustTransition(t, s, r.ID, store.RunRunning)
	if st == store.RunRunning {
		return r
	}
	return mustTransition(t, s, r.ID, st)
}

func testRunTransitions(t *testing.T, s store.Store) {
	for _, from := range store.RunStates {
		for _, to := range store.RunStates {
			r := reachRunState(t, s, from)
			got, err := s.TransitionRun(ctx(t), r.ID, to, &store.TransitionOptions{Error: "boom"})
			op := fmt.Sprintf("TransitionRun %s → %s", from, to)
			if from.CanTransition(to) {
				if err != nil {
					t.Errorf("%s: %v", op, err)
					continue
				}
				if got.State != to {
					t.Errorf("%s: returned state %s", op, got.State)
				}
				if stored := mustGetRun(t, s, r.ID); stored.State != to {
					t.Errorf("%s: stored state %s", op, stored.State)
				}
				continue
			}
			wantTransitionError(t, op, err, string(from), string(to))
			if stored := mustGetRun(t, s, r.ID); stored.State != from {
				t.Errorf("%s refused but the run is now %s", op, stored.State)
			}
		}
	}
}

func testRunTransitionTimestamps(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("stamps"))
	running := mustTransition(t, s, r.ID, store.RunRunning)
	if running.StartedAt == nil || !recent(*running.StartedAt) {
		t.Fatalf("running: started_at %v, want now", running.StartedAt)
	}
	if running.FinishedAt != nil {
		t.Fatalf("running: finished_at %v, want nil", running.FinishedAt)
	}
	time.Sleep(5 * time.Millisecond)
	failed, err := s.TransitionRun(ctx(t), r.ID, store.RunFailed, &store.TransitionOptions{Error: "3 batches failed"})
	if err != nil {
		t.Fatalf("running → failed: %v", err)
	}
	if failed.Error != "3 batches failed" {
		t.Errorf("failed: error %q, want the summary", failed.Error)
	}
	if failed.FinishedAt == nil || !recent(*failed.FinishedAt) {
		t.Errorf("failed: finished_at %v, want now", failed.FinishedAt)
	}
	if failed.StartedAt == nil || !failed.StartedAt.Equal(*running.StartedAt) {
		t.Errorf("failed: started_at %v, want unchanged %v", failed.StartedAt, running.StartedAt)
	}
	if got := mustGetRun(t, s, r.ID); got.Error != "3 batches failed" || got.FinishedAt == nil {
		t.Errorf("stored failed run: error %q finished_at %v", got.Error, got.FinishedAt)
	}
	again := mustTransition(t, s, r.ID, store.RunRunning)
	if again.FinishedAt != nil {
		t.Errorf("failed → running: finished_at %v, want cleared", again.FinishedAt)
	}
	if again.Error != "" {
		t.Errorf("failed → running: error %q, want cleared", again.Error)
	}
	if again.StartedAt == nil || !again.StartedAt.Equal(*running.StartedAt) {
		t.Errorf("failed → running: started_at %v, want the first start %v", again.StartedAt, running.StartedAt)
	}
	done := mustTransition(t, s, r.ID, store.RunSucceeded)
	if done.FinishedAt == nil || done.Error != "" {
		t.Errorf("succeeded: finished_at %v error %q", done.FinishedAt, done.Error)
	}
	if !done.UpdatedAt.After(r.UpdatedAt) {
		t.Errorf("updated_at %v not after creation %v", done.UpdatedAt, r.UpdatedAt)
	}
}

func testSetRunTotal(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("totals"))
	if err := s.SetRunTotal(ctx(t), r.ID, 20_000_000, true); err != nil {
		t.Fatalf("SetRunTotal: %v", err)
	}
	got := mustGetRun(t, s, r.ID)
	if got.Total != 20_000_000 || !got.TotalEstimated {
		t.Fatalf("total %d estimated %v, want 20000000 estimated", got.Total, got.TotalEstimated)
	}
	if err := s.SetRunTotal(ctx(t), r.ID, 1234, false); err != nil {
		t.Fatalf("SetRunTotal: %v", err)
	}
	got = mustGetRun(t, s, r.ID)
	if got.Total != 1234 || got.TotalEstimated {
		t.Fatalf("total %d estimated %v, want exact 1234", got.Total, got.TotalEstimated)
	}
	wantArgumentError(t, "SetRunTotal(-5)", s.SetRunTotal(ctx(t), r.ID, -5, false), "total")
}

func runIDs(rs []store.Run) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testListRunsFilters(t *testing.T, s store.Store) {
	type spec struct {
		def, by string
		state   store.RunState
	}
	specs := []spec{
		{"a", "alice", store.RunScheduled},
		{"b", "bob", store.RunRunning},
		{"a", "bob", store.RunPaused},
		{"a", "alice", store.RunSucceeded},
		{"b", "alice", store.RunFailed},
		{"a", "carol", store.RunRunning},
		{"c", "alice", store.RunCancelled},
	}
	ids := make([]int64, len(specs))
	for i, sp := range specs {
		n := newRun(sp.def)
		n.CreatedBy = sp.by
		r := mustCreate(t, s, n)
		switch sp.state {
		case store.RunScheduled:
		case store.RunCancelled:
			mustTransition(t, s, r.ID, store.RunCancelled)
		default:
			mustTransition(t, s, r.ID, store.RunRunning)
			if sp.state != store.RunRunning {
				mustTransition(t, s, r.ID, sp.state)
			}
		}
		ids[i] = r.ID
	}
	// want lists spec indexes, newest first.
	tests := []struct {
		name   string
		filter store.RunFilter
		want   []int
	}{
		{"all", store.RunFilter{}, []int{6, 5, 4, 3, 2, 1, 0}},
		{"running", store.RunFilter{States: []store.RunState{store.RunRunning}}, []int{5, 1}},
		{"running or paused", store.RunFilter{States: []store.RunState{store.RunPaused, store.RunRunning}}, []int{5, 2, 1}},
		{"definition a", store.RunFilter{Definition: "a"}, []int{5, 3, 2, 0}},
		{"definition a running", store.RunFilter{Definition: "a", States: []store.RunState{store.RunRunning}}, []int{5}},
		{"alice", store.RunFilter{CreatedBy: "alice"}, []int{6, 4, 3, 0}},
		{"alice a", store.RunFilter{CreatedBy: "alice", Definition: "a"}, []int{3, 0}},
		{"alice b failed", store.RunFilter{CreatedBy: "alice", Definition: "b", States: []store.RunState{store.RunFailed}}, []int{4}},
		{"nobody", store.RunFilter{CreatedBy: "dave"}, []int{}},
		{"unknown definition", store.RunFilter{Definition: "zzz"}, []int{}},
		{"cancelling", store.RunFilter{States: []store.RunState{store.RunCancelling}}, []int{}},
	}
	for _, tt := range tests {
		for _, limit := range []int{0, 1, 2, 3} {
			f := tt.filter
			f.Limit = limit
			var got []int64
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("%s: pagination does not end", tt.name)
				}
				p, err := s.ListRuns(ctx(t), f)
				if err != nil {
					t.Fatalf("%s: ListRuns: %v", tt.name, err)
				}
				if limit > 0 && len(p.Items) > limit {
					t.Fatalf("%s: page of %d items with limit %d", tt.name, len(p.Items), limit)
				}
				got = append(got, runIDs(p.Items)...)
				if p.NextCursor == "" {
					break
				}
				f.Cursor = p.NextCursor
			}
			want := make([]int64, 0, len(tt.want))
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if got == nil {
				got = []int64{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (limit %d): run ids (-want +got):\n%s", tt.name, limit, diff)
			}
		}
	}
}

func testListRunsPagination(t *testing.T, s store.Store) {
	const n = 120
	want := make([]int64, n)
	for i := 0; i < n; i++ {
		r := mustCreate(t, s, newRun(fmt.Sprintf("def_%d", i%3)))
		want[n-1-i] = r.ID
	}
	for _, limit := range []int{7, 50, 1000} {
		var got []int64
		f := store.RunFilter{Limit: limit}
		pages := 0
		for {
			p, err := s.ListRuns(ctx(t), f)
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			pages++
			got = append(got, runIDs(p.Items)...)
			if p.NextCursor == "" {
				break
			}
			if len(p.Items) != limit {
				t.Fatalf("limit %d: a non-final page has %d items", limit, len(p.Items))
			}
			f.Cursor = p.NextCursor
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d: ids (-want +got):\n%s", limit, diff)
		}
		if wantPages := (n + limit - 1) / limit; pages != wantPages && pages != wantPages+1 {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// A cursor stays valid while newer runs are created: the next page goes
	// on from where the last one ended, not from the new head.
	p1, err := s.ListRuns(ctx(t), store.RunFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newRun("newer"))
	p2, err := s.ListRuns(ctx(t), store.RunFilter{Limit: 10, Cursor: p1.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[10:20], runIDs(p2.Items)); diff != "" {
		t.Errorf("second page after an insert (-want +got):\n%s", diff)
	}
}

func testListRejectsBadInput(t *testing.T, s store.Store) {
	r := runningRun(t, s)
	plan(t, s, r.ID, 3)
	badCursors := []string{"not a cursor!", "eyJpZCI6MX0", store.EncodeCursor(5) + "x", "%%%"}
	for _, c := range badCursors {
		_, err := s.ListRuns(ctx(t), store.RunFilter{Cursor: c})
		wantArgumentError(t, fmt.Sprintf("ListRuns(cursor %q)", c), err, "cursor")
		_, err = s.ListBatches(ctx(t), r.ID, store.BatchFilter{Cursor: c})
		wantArgumentError(t, fmt.Sprintf("ListBatches(cursor %q)", c), err, "cursor")
	}
	for _, limit := range []int{-1, store.MaxLimit + 1} {
		_, err := s.ListRuns(ctx(t), store.RunFilter{Limit: limit})
		wantArgumentError(t, fmt.Sprintf("ListRuns(limit %d)", limit), err, "limit")
		_, err = s.ListBatches(ctx(t), r.ID, store.BatchFilter{Limit: limit})
		wantArgumentError(t, fmt.Sprintf("ListBatches(limit %d)", limit), err, "limit")
	}
	_, err := s.ListRuns(ctx(t), store.RunFilter{States: []store.RunState{"sleeping"}})
	wantArgumentError(t, "ListRuns(unknown state)", err, "status")
	_, err = s.ListBatches(ctx(t), r.ID, store.BatchFilter{States: []store.BatchState{"sleeping"}})
	wantArgumentError(t, "ListBatches(unknown state)", err, "status")
}
