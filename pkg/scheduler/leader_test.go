package scheduler

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/internal/testenv"
)

// Two electors on one key: one leads at a time; when the leader stops,
// the other takes over within the lease's TTL; a leader whose lease was
// taken from it stops leading.
func TestElector(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	key := prefix + "leader"
	const ttl = 600 * time.Millisecond
	var leaders atomic.Int32 // how many lead right now
	var twice atomic.Bool
	leading := make(chan string, 10)
	newElector := func(id string) *elector {
		return &elector{rdb: rdb, key: key, id: id, token: id, ttl: ttl, log: zaptest.NewLogger(t)}
	}
	lead := func(id string) func(context.Context) {
		return func(ctx context.Context) {
			if leaders.Add(1) > 1 {
				twice.Store(true)
			}
			leading <- id
			<-ctx.Done()
			leaders.Add(-1)
		}
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { newElector("a").run(ctxA, lead("a")) })
	defer func() { stopA(); stopB(); wg.Wait() }()
	if got := recv(t, leading, ttl); got != "a" {
		t.Fatalf("leader %q, want a (alone)", got)
	}
	wg.Go(func() { newElector("b").run(ctxB, lead("b")) })
	select {
	case id := <-leading:
		t.Fatalf("%s leads too while a holds the lease", id)
	case <-time.After(2 * ttl):
	}

	stopA() // a gives the lease up: b takes over
	if got := recv(t, leading, 2*ttl); got != "b" {
		t.Fatalf("leader %q after a stopped, want b", got)
	}
	if twice.Load() {
		t.Fatal("two electors led at once")
	}

	// Someone else takes the key: b notices at its next renewal.
	if err := rdb.Set(context.Background(), key, "intruder", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * ttl)
	for leaders.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("b still leads after its lease was taken")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, _ := rdb.Get(context.Background(), key).Result(); v != "intruder" {
		t.Fatalf("the lease holds %q: b released a lease it no longer held", v)
	}
}

func recv(t *testing.T, ch <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("nothing within %v", within)
		return ""
	}
}
