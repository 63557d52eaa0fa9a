package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/store"
)

// testListRunsByKind: RunFilter.Kind lists only backfills or only flows,
// newest first and page by page, alone and with the other filters; an
// unknown kind is an *ArgumentError for "kind".
func testListRunsByKind(t *testing.T, s store.Store) {
	type spec struct {
		def   string
		kind  store.Kind
		state store.RunState
	}
	specs := []spec{
		{"b1", store.KindBackfill, store.RunScheduled}, // 0
		{"f1", store.KindFlow, store.RunSucceeded},     // 1
		{"f1", store.KindFlow, store.RunSucceeded},     // 2
		{"b2", store.KindBackfill, store.RunRunning},   // 3
		{"f2", store.KindFlow, store.RunCancelled},     // 4
		{"f1", store.KindFlow, store.RunRunning},       // 5
		{"b1", store.KindBackfill, store.RunSucceeded}, // 6
		{"f2", store.KindFlow, store.RunScheduled},     // 7
	}
	ids := make([]int64, len(specs))
	for i, sp := range specs {
		n := newRun(sp.def)
		n.Kind = sp.kind
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
	tests := []struct {
		name   string
		filter store.RunFilter
		want   []int
	}{
		{"backfills", store.RunFilter{Kind: store.KindBackfill}, []int{6, 3, 0}},
		{"flows", store.RunFilter{Kind: store.KindFlow}, []int{7, 5, 4, 2, 1}},
		{"both", store.RunFilter{}, []int{7, 6, 5, 4, 3, 2, 1, 0}},
		{"succeeded flows", store.RunFilter{Kind: store.KindFlow, States: []store.RunState{store.RunSucceeded}}, []int{2, 1}},
		{"live backfills", store.RunFilter{Kind: store.KindBackfill, States: []store.RunState{store.RunScheduled, store.RunRunning}}, []int{3, 0}},
		{"flow f2", store.RunFilter{Kind: store.KindFlow, Definition: "f2"}, []int{7, 4}},
		{"backfill named like a flow", store.RunFilter{Kind: store.KindBackfill, Definition: "f1"}, []int{}},
		{"alice's backfills", store.RunFilter{Kind: store.KindBackfill, CreatedBy: "alice"}, []int{6, 3, 0}},
	}
	for _, tt := range tests {
		for _, limit := range []int{0, 1, 2} {
			f := tt.filter
			f.Limit = limit
			got := []int64{}
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("%s: pagination does not end", tt.name)
				}
				p, err := s.ListRuns(ctx(t), f)
				if err != nil {
					t.Fatalf("%s: ListRuns: %v", tt.name, err)
				}
				for _, r := range p.Items {
					if tt.filter.Kind != "" && r.Kind != tt.filter.Kind {
						t.Errorf("%s: run %d of kind %s listed", tt.name, r.ID, r.Kind)
					}
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
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (limit %d): run ids (-want +got):\n%s", tt.name, limit, diff)
			}
		}
	}
	_, err := s.ListRuns(ctx(t), store.RunFilter{Kind: "job"})
	wantArgumentError(t, "ListRuns(kind job)", err, "kind")
}
