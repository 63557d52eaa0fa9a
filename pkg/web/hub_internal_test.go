package web

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/store"
)

// fakeRuns is a store whose one run the test changes.
type fakeRuns struct {
	store.Store
	mu   sync.Mutex
	run  store.Run
	gets atomic.Int64
}

func (f *fakeRuns) GetRun(_ context.Context, id int64) (store.Run, error) {
	f.gets.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.run.ID {
		return store.Run{}, store.ErrNotFound
	}
	return f.run, nil
}

func (f *fakeRuns) set(st store.RunState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.run.State = st
	f.run.UpdatedAt = f.run.UpdatedAt.Add(time.Second)
}

func TestRunHub(t *testing.T) {
	st := &fakeRuns{run: store.Run{ID: 7, State: store.RunRunning}}
	h := newRunHub(st, zap.NewNop(), 10*time.Millisecond, 3, 2)

	// Caps: two per identity, three in all.
	for i, step := range []struct {
		who     string
		refused bool
	}{{"a", false}, {"a", false}, {"a", true}, {"b", false}, {"c", true}} {
		if err := h.acquire(step.who); (err != nil) != step.refused {
			t.Fatalf("acquire %d by %s: %v, want refused %v (caps: two per identity, three in all)", i, step.who, err, step.refused)
		}
	}
	h.release("a")
	if h.acquire("c") != nil {
		t.Fatal("a released place is not free")
	}

	// Three streams of one run: one poll, every stream sees each change.
	var chans []<-chan store.Run
	var leaves []func()
	for i := 0; i < 3; i++ {
		ch, leave := h.subscribe(st.run)
		chans, leaves = append(chans, ch), append(leaves, leave)
	}
	time.Sleep(100 * time.Millisecond)
	if n := st.gets.Load(); n < 5 || n > 12 {
		t.Errorf("3 streams made %d reads in 100ms at one poll per 10ms", n)
	}
	st.set(store.RunPaused)
	for i, ch := range chans {
		select {
		case r := <-ch:
			if r.State != store.RunPaused {
				t.Errorf("stream %d got %s", i, r.State)
			}
		case <-time.After(time.Second):
			t.Fatalf("stream %d got no change", i)
		}
	}
	// The last to leave stops the poll.
	for _, leave := range leaves {
		leave()
		leave() // twice is harmless
	}
	time.Sleep(30 * time.Millisecond)
	before := st.gets.Load()
	time.Sleep(60 * time.Millisecond)
	if n := st.gets.Load() - before; n != 0 {
		t.Errorf("%d reads after every stream left", n)
	}
	h.mu.Lock()
	if len(h.watches) != 0 {
		t.Errorf("watches left: %d", len(h.watches))
	}
	h.mu.Unlock()

	// A run that ends closes its streams after its last state.
	ch, leave := h.subscribe(st.run)
	defer leave()
	st.set(store.RunSucceeded)
	var last store.Run
	for r := range ch {
		last = r
	}
	if last.State != store.RunSucceeded {
		t.Errorf("last state %s", last.State)
	}
}
