package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/events"
)

// goleak (TestMain) checks that a subscription's goroutine ends with its
// context.
func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }

func TestSubscribeDeliversEventsUntilContextEnds(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	rdb, prefix := testenv.Redis(t)
	bus := events.New(rdb, prefix+"events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := bus.Subscribe(ctx)

	// A subscription is live once Redis counts it; publish after that.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.PubSubNumSub(ctx, prefix+"events").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n[prefix+"events"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("subscription not live after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bus.RunChanged(ctx, 7)
	bus.RunResumed(ctx, 8)
	for _, want := range []events.Event{{RunID: 7}, {RunID: 8, Resumed: true}} {
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("event %+v, want %+v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %+v within 10s", want)
		}
	}

	cancel()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed 10s after the context ended")
	}
}

func TestNilBusPublishesNothing(t *testing.T) {
	var bus *events.Bus
	bus.RunChanged(context.Background(), 1) // must not panic
	bus.RunResumed(context.Background(), 1)
}
