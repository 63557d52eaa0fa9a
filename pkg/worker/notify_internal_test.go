package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/events"
)

// Completions of a run reported from many goroutines reach subscribers as
// at most as many events, none is left in flight once wait returns, and a
// change reported after wait (a batch that outlived the drain) is published
// by its caller.
func TestNotifierPublishesEveryRunAndAfterWait(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	bus := events.New(rdb, prefix+"events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := bus.Subscribe(ctx)
	time.Sleep(100 * time.Millisecond) // let the subscription start

	n := newNotifier(bus)
	const changes = 200
	var wg sync.WaitGroup
	for range changes {
		wg.Add(1)
		go func() { defer wg.Done(); n.changed(7) }()
	}
	wg.Wait()
	n.wait()
	if len(n.pending) != 0 {
		t.Fatalf("publishes still due after wait: %v", n.pending)
	}
	n.changed(8)

	var got, late int
	timeout := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-sub:
			switch ev.RunID {
			case 7:
				got++
			case 8:
				late++
			default:
				t.Fatalf("event for run %d, want 7 or 8", ev.RunID)
			}
		case <-time.After(300 * time.Millisecond):
			done = true
		case <-timeout:
			done = true
		}
	}
	if got == 0 || got > changes {
		t.Fatalf("%d events for %d changes, want 1 to %d", got, changes, changes)
	}
	if late != 1 {
		t.Fatalf("%d events for the change reported after wait, want 1", late)
	}
	t.Logf("%d changes published as %d events", changes, got)
}
