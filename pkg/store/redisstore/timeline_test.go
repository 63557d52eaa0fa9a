package redisstore_test

import (
	"fmt"
	"testing"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

// A run keeps its newest events: beyond the cap the oldest are dropped and
// their keys can be written again.
func TestRunEventsCap(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, redisstore.Config{})
	redisstore.SetMaxEvents(s, 3)
	run, err := s.CreateRun(ctx, store.NewRun{Definition: "capped", Kind: store.KindBackfill,
		Options: store.RunOptions{BatchSize: 10, MaxAttempts: 1, MaxInFlight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AppendRunEvent(ctx, store.RunEvent{RunID: run.ID, Kind: store.EventThrottled, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 5; i++ {
		if _, _, err := s.AppendRunEvent(ctx, store.RunEvent{RunID: run.ID, Kind: store.EventNote, Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.ListRunEvents(ctx, run.ID, store.EventFilter{})
	if err != nil || len(evs) != 3 || evs[0].ID != 3 || evs[2].ID != 5 {
		t.Fatalf("events beyond the cap: %+v, %v; want ids 3..5", evs, err)
	}
	ev, inserted, err := s.AppendRunEvent(ctx, store.RunEvent{RunID: run.ID, Kind: store.EventThrottled, Key: "k"})
	if err != nil || !inserted || ev.ID != 6 {
		t.Fatalf("key of a dropped event appended again: %+v, %v, %v; want new event 6", ev, inserted, err)
	}
}
