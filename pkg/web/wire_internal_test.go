package web

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// The API's progress keeps the JSON shape control.Progress had when the API
// embedded it.
func TestProgressWireShapeMatchesControlProgress(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := store.Run{ID: 7, State: store.RunRunning, Total: 1000, StartedAt: &start,
		Counters: store.Counters{RowsRead: 250, BatchesSucceeded: 2, BatchesRunning: 1, BatchesPending: 5}}
	now := start.Add(10 * time.Second)
	want, err := json.Marshal(control.ProgressOf(r, now))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(runOf(r, now).Progress)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("progress JSON (-control +api):\n%s", diff)
	}
}
