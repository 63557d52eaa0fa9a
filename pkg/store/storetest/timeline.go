package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/dripflow/dripflow/pkg/store"
)

func mustAppendEvent(t *testing.T, s store.Store, e store.RunEvent) store.RunEvent {
	t.Helper()
	got, inserted, err := s.AppendRunEvent(ctx(t), e)
	if err != nil {
		t.Fatalf("AppendRunEvent(%+v): %v", e, err)
	}
	if !inserted {
		t.Fatalf("AppendRunEvent(%+v) returned inserted=false for a new event", e)
	}
	return got
}

func mustListEvents(t *testing.T, s store.Store, runID int64, f store.EventFilter) []store.RunEvent {
	t.Helper()
	got, err := s.ListRunEvents(ctx(t), runID, f)
	if err != nil {
		t.Fatalf("ListRunEvents(%d, %+v): %v", runID, f, err)
	}
	return got
}

func eventIDs(evs []store.RunEvent) []int64 {
	ids := make([]int64, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// A run's events come back as appended, oldest first, numbered 1, 2, … per
// run, with their fields; At is the store's time unless given, and then
// kept in UTC with microseconds.
func testRunEvents(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("backfill_users"))
	other := mustCreate(t, s, newRun("backfill_users"))
	if got := mustListEvents(t, s, r.ID, store.EventFilter{}); len(got) != 0 {
		t.Fatalf("events of a new run: %+v, want none", got)
	}
	before := time.Now().Add(-time.Minute)
	zone := time.FixedZone("UTC+2", 2*3600)
	given := time.Date(2030, 5, 6, 7, 8, 9, 123456789, zone)
	appended := []store.RunEvent{
		mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventCreated, Actor: "user:alice", Message: "batch size 100"}),
		mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventStarted, Actor: "scheduler"}),
		mustAppendEvent(t, s, store.RunEvent{RunID: other.ID, Kind: store.EventCreated, Actor: "user:bob"}),
		mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventBatchFailed, Actor: "worker:w1", Batch: 7,
			Message: "attempt 1 of 3: boom ✗", At: given}),
		mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Actor: "scheduler", Key: "throttle:1",
			Message: "rows_per_second binds"}),
	}
	for i, want := range []struct {
		run int64
		id  int64
	}{{r.ID, 1}, {r.ID, 2}, {other.ID, 1}, {r.ID, 3}, {r.ID, 4}} {
		if appended[i].RunID != want.run || appended[i].ID != want.id {
			t.Errorf("appended event %d: run %d id %d, want run %d id %d", i, appended[i].RunID, appended[i].ID, want.run, want.id)
		}
	}
	if at := appended[0].At; at.Before(before) || at.After(time.Now().Add(time.Minute)) || at.Location() != time.UTC {
		t.Errorf("At of an event appended without one = %v, want the store's time now in UTC", at)
	}
	if want := time.Date(2030, 5, 6, 5, 8, 9, 123456000, time.UTC); !appended[3].At.Equal(want) || appended[3].At.Location() != time.UTC {
		t.Errorf("At of an event appended with one = %v, want %v", appended[3].At, want)
	}

	got := mustListEvents(t, s, r.ID, store.EventFilter{})
	want := []store.RunEvent{appended[0], appended[1], appended[3], appended[4]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ListRunEvents (-want +got):\n%s", diff)
	}
	if got[2].Batch != 7 || got[2].Actor != "worker:w1" || got[2].Message != "attempt 1 of 3: boom ✗" || got[3].Key != "throttle:1" {
		t.Fatalf("stored fields: %+v", got)
	}
	if diff := cmp.Diff([]store.RunEvent{appended[2]}, mustListEvents(t, s, other.ID, store.EventFilter{})); diff != "" {
		t.Fatalf("events of the other run (-want +got):\n%s", diff)
	}

	// Pages: after an id, at most limit.
	if ids := eventIDs(mustListEvents(t, s, r.ID, store.EventFilter{AfterID: 1, Limit: 2})); !cmp.Equal(ids, []int64{2, 3}) {
		t.Errorf("after 1, limit 2: ids %v, want [2 3]", ids)
	}
	if ids := eventIDs(mustListEvents(t, s, r.ID, store.EventFilter{AfterID: 3})); !cmp.Equal(ids, []int64{4}) {
		t.Errorf("after 3: ids %v, want [4]", ids)
	}
	if got := mustListEvents(t, s, r.ID, store.EventFilter{AfterID: 4}); len(got) != 0 {
		t.Errorf("after the last: %+v, want none", got)
	}
	if got := mustListEvents(t, s, r.ID, store.EventFilter{AfterID: 1000}); len(got) != 0 {
		t.Errorf("after 1000: %+v, want none", got)
	}

	// The default page holds 100, and at most 1000 can be asked for.
	for i := 0; i < 120; i++ {
		mustAppendEvent(t, s, store.RunEvent{RunID: other.ID, Kind: store.EventNote, Message: fmt.Sprint("note ", i)})
	}
	page := mustListEvents(t, s, other.ID, store.EventFilter{})
	if len(page) != store.DefaultEventLimit || page[0].ID != 1 || page[99].ID != 100 {
		t.Fatalf("default page: %d events, ids %d..%d; want 1..100", len(page), page[0].ID, page[len(page)-1].ID)
	}
	if all := mustListEvents(t, s, other.ID, store.EventFilter{Limit: store.MaxEventLimit}); len(all) != 121 || all[120].Message != "note 119" {
		t.Fatalf("all 121 events: got %d", len(all))
	}

	// Events stay when the run changes state.
	mustTransition(t, s, r.ID, store.RunRunning)
	mustTransition(t, s, r.ID, store.RunPaused)
	if got := mustListEvents(t, s, r.ID, store.EventFilter{}); len(got) != 4 {
		t.Fatalf("events after the run moved: %d, want 4", len(got))
	}
}

// An event with a key is written once per run: appending the key again
// returns the first event, inserted=false, and writes nothing.
func testRunEventKeys(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("backfill_users"))
	other := mustCreate(t, s, newRun("backfill_users"))
	first := mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Actor: "scheduler", Key: "throttle:rps", Message: "first"})
	mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventNote, Message: "between"})
	again, inserted, err := s.AppendRunEvent(ctx(t), store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Actor: "scheduler", Key: "throttle:rps", Message: "second"})
	if err != nil || inserted {
		t.Fatalf("appending a key again: inserted=%v, %v; want false, nil", inserted, err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Fatalf("appending a key again returned (-first +got):\n%s", diff)
	}
	// Another kind with the same key is the same key.
	again, inserted, err = s.AppendRunEvent(ctx(t), store.RunEvent{RunID: r.ID, Kind: store.EventNote, Key: "throttle:rps"})
	if err != nil || inserted || again.ID != first.ID {
		t.Fatalf("same key, other kind: %+v inserted=%v, %v; want event %d, false", again, inserted, err, first.ID)
	}
	// The same key on another run is another event.
	o := mustAppendEvent(t, s, store.RunEvent{RunID: other.ID, Kind: store.EventThrottled, Key: "throttle:rps", Message: "other run"})
	if o.ID != 1 || o.RunID != other.ID {
		t.Fatalf("same key on another run: %+v, want its event 1", o)
	}
	// Events without a key are never deduplicated.
	mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventNote, Message: "between"})
	got := mustListEvents(t, s, r.ID, store.EventFilter{})
	msgs := make([]string, len(got))
	for i, e := range got {
		msgs[i] = e.Message
	}
	if diff := cmp.Diff([]string{"first", "between", "between"}, msgs); diff != "" {
		t.Fatalf("events after repeated keys (-want +got):\n%s", diff)
	}
	if ids := eventIDs(got); !cmp.Equal(ids, []int64{1, 2, 3}) {
		t.Fatalf("ids %v, want [1 2 3]: a refused key must not use up an id", ids)
	}
}

// Bad input is refused with ErrInvalidArgument (or ErrNotFound for an
// unknown run) and writes nothing; a long message is cut, not refused.
func testRunEventsRejectBadInput(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("backfill_users"))
	for _, tc := range []struct {
		name  string
		e     store.RunEvent
		field string
	}{
		{"unknown kind", store.RunEvent{RunID: r.ID, Kind: "exploded"}, "kind"},
		{"empty kind", store.RunEvent{RunID: r.ID}, "kind"},
		{"negative batch", store.RunEvent{RunID: r.ID, Kind: store.EventNote, Batch: -1}, "batch"},
		{"long key", store.RunEvent{RunID: r.ID, Kind: store.EventNote, Key: strings.Repeat("k", store.MaxEventKey+1)}, "key"},
		{"long actor", store.RunEvent{RunID: r.ID, Kind: store.EventNote, Actor: strings.Repeat("a", store.MaxEventActor+1)}, "actor"},
		{"key not UTF-8", store.RunEvent{RunID: r.ID, Kind: store.EventNote, Key: "\xff"}, "key"},
	} {
		_, _, err := s.AppendRunEvent(ctx(t), tc.e)
		var argErr *store.ArgumentError
		if !errors.Is(err, store.ErrInvalidArgument) || !errors.As(err, &argErr) || argErr.Field != tc.field {
			t.Errorf("%s: %v, want an *ArgumentError for %q", tc.name, err, tc.field)
		}
	}
	for _, id := range []int64{0, -1, r.ID + 1000} {
		if _, _, err := s.AppendRunEvent(ctx(t), store.RunEvent{RunID: id, Kind: store.EventNote}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("append to run %d: %v, want ErrNotFound", id, err)
		}
		if _, err := s.ListRunEvents(ctx(t), id, store.EventFilter{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("list events of run %d: %v, want ErrNotFound", id, err)
		}
	}
	for _, f := range []store.EventFilter{{Limit: -1}, {Limit: store.MaxEventLimit + 1}, {AfterID: -1}} {
		if _, err := s.ListRunEvents(ctx(t), r.ID, f); !errors.Is(err, store.ErrInvalidArgument) {
			t.Errorf("ListRunEvents(%+v): %v, want ErrInvalidArgument", f, err)
		}
	}
	if got := mustListEvents(t, s, r.ID, store.EventFilter{}); len(got) != 0 {
		t.Fatalf("refused events were written: %+v", got)
	}

	// A message over MaxEventMessage bytes is cut at a character boundary.
	long := strings.Repeat("é", store.MaxEventMessage) // 2 bytes each
	ev := mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventBatchFailed, Batch: 1, Message: long})
	stored := mustListEvents(t, s, r.ID, store.EventFilter{})
	if len(stored) != 1 || stored[0].Message != ev.Message {
		t.Fatalf("stored long message differs from the returned one")
	}
	if m := ev.Message; len(m) > store.MaxEventMessage || !utf8.ValidString(m) || !strings.HasSuffix(m, "…") || !strings.HasPrefix(m, "éé") {
		t.Fatalf("long message stored as %d bytes (valid UTF-8 %v), want at most %d ending with …", len(m), utf8.ValidString(m), store.MaxEventMessage)
	}
	// A key of exactly MaxEventKey bytes is fine.
	mustAppendEvent(t, s, store.RunEvent{RunID: r.ID, Kind: store.EventNote, Key: strings.Repeat("k", store.MaxEventKey)})
}

// Racing appends get distinct, dense ids; racing appends of one key write
// it exactly once.
func testRaceRunEvents(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRun("backfill_users"))
	const (
		writers = 20
		each    = 5
		keyed   = 20
	)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inserted []store.RunEvent
		keyedIDs = map[int64]int{}
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e, ok, err := s.AppendRunEvent(ctx(t), store.RunEvent{RunID: r.ID, Kind: store.EventNote, Message: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil || !ok {
					t.Errorf("append: inserted=%v, %v", ok, err)
					return
				}
				mu.Lock()
				inserted = append(inserted, e)
				mu.Unlock()
			}
		}()
	}
	for k := 0; k < keyed; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, ok, err := s.AppendRunEvent(ctx(t), store.RunEvent{RunID: r.ID, Kind: store.EventThrottled, Key: "once", Message: fmt.Sprint("k", k)})
			if err != nil {
				t.Errorf("keyed append: %v", err)
				return
			}
			mu.Lock()
			keyedIDs[e.ID]++
			if ok {
				inserted = append(inserted, e)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(keyedIDs) != 1 {
		t.Fatalf("racing appends of one key returned events %v, want one event", keyedIDs)
	}
	total := writers*each + 1
	if len(inserted) != total {
		t.Fatalf("%d appends reported inserted, want %d", len(inserted), total)
	}
	var all []store.RunEvent
	for after := int64(0); ; {
		page := mustListEvents(t, s, r.ID, store.EventFilter{AfterID: after, Limit: 7})
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	if len(all) != total {
		t.Fatalf("listed %d events, want %d", len(all), total)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.ID != int64(i+1) {
			t.Fatalf("event %d has id %d: ids must be 1..%d in order", i, e.ID, total)
		}
		if seen[e.Message] {
			t.Fatalf("message %q listed twice", e.Message)
		}
		seen[e.Message] = true
	}
}

// CheckEventsCap checks a store whose cap of events per run is set to 3
// (each backend's SetMaxEvents): beyond the cap the oldest events are
// dropped and their keys can be written again. It returns the run it used.
func CheckEventsCap(t *testing.T, s store.Store) store.Run {
	t.Helper()
	ctx := t.Context()
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
	return run
}
