package scheduler

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/worker"
)

// fakeWorkers is a workers' registry in memory.
type fakeWorkers struct {
	mu      sync.Mutex
	workers []worker.WorkerInfo
}

func (w *fakeWorkers) List(context.Context) ([]worker.WorkerInfo, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.workers), nil
}

func (w *fakeWorkers) Forget(_ context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.workers = slices.DeleteFunc(w.workers, func(i worker.WorkerInfo) bool { return i.ID == id })
	return nil
}

var _ workerRegistry = (*fakeWorkers)(nil)

// A dead worker's claims end at once and its batches are requeued (a
// running run) or its run looked at again (a cancelling run); the dead
// worker is forgotten; a live worker's claim stays.
func TestRescuerEndsDeadWorkersClaims(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	running := runningRunWith(t, st, 2)
	cancelling := runningRunWith(t, st, 1)
	claimBy := func(r store.Run, seq int64, w string) {
		if _, err := st.ClaimBatch(ctx, r.ID, seq, store.Claim{Worker: w, Token: w + "-" + string(rune('0'+seq)), Lease: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	claimBy(running, 1, "dead")
	claimBy(running, 2, "alive")
	claimBy(cancelling, 1, "dead")
	if _, err := st.CancelRun(ctx, cancelling.ID); err != nil {
		t.Fatal(err)
	}
	workers := &fakeWorkers{workers: []worker.WorkerInfo{{ID: "dead", Alive: false}, {ID: "alive", Alive: true}}}
	var requeued []int64
	var settled []int64
	c := &rescuer{store: st, workers: workers, log: zaptest.NewLogger(t),
		requeue: func(ctx context.Context, r store.Run, b store.Batch, now bool, log *zap.Logger) {
			if !now {
				t.Errorf("batch %d of run %d requeued after the grace, want at once", b.Seq, r.ID)
			}
			requeued = append(requeued, r.ID*100+b.Seq)
		},
		settle: func(ctx context.Context, r store.Run) { settled = append(settled, r.ID) },
	}
	c.rescue(ctx)

	if want := []int64{running.ID*100 + 1}; !slices.Equal(requeued, want) {
		t.Errorf("requeued %v, want %v (the running run's batch 1)", requeued, want)
	}
	if want := []int64{cancelling.ID}; !slices.Equal(settled, want) {
		t.Errorf("settled runs %v, want %v (the cancelling run)", settled, want)
	}
	for seq, wantLive := range map[int64]bool{1: false, 2: true} {
		b, err := st.GetBatch(ctx, running.ID, seq)
		if err != nil {
			t.Fatal(err)
		}
		if live := b.LeaseUntil != nil && b.LeaseUntil.After(time.Now()); live != wantLive {
			t.Errorf("batch %d's claim live %v (until %v), want %v", seq, live, b.LeaseUntil, wantLive)
		}
	}
	if ws, _ := workers.List(ctx); len(ws) != 1 || ws[0].ID != "alive" {
		t.Errorf("workers left %+v, want only alive", ws)
	}
}
