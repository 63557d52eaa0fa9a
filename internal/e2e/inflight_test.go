package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// The scheduler enqueues an unpaced run's batches side by side: the run
// still never has more than max_in_flight batches queued or running, and
// every row is processed exactly once.
func TestManyBatchesInFlight(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e2edefs.Migrate(ctx, e.db); err != nil {
		t.Fatal(err)
	}
	const items, size, inFlight = 6000, 20, 24
	if err := e.db.Exec(`INSERT INTO e2e_items (id, counter, poison, val, updated_at)
		SELECT g, 0, false, 'v' || g, now() FROM generate_series(1, ?) AS g`, items).Error; err != nil {
		t.Fatal(err)
	}
	e.start(2)
	r, err := e.ctl.CreateRun(ctx, control.NewRun{Definition: "e2e_bump", CreatedBy: "test",
		BatchSize: ptr(size), MaxInFlight: ptr(inFlight)})
	if err != nil {
		t.Fatal(err)
	}
	var most atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if got, err := e.st.GetRun(ctx, r.ID); err == nil {
				if n := got.BatchesEnqueued + got.BatchesRunning; n > most.Load() {
					most.Store(n)
				}
			}
		}
	}()
	done := e.waitRun(r.ID, 2*time.Minute)
	close(stop)
	<-sampled
	if done.State != store.RunSucceeded || done.BatchesSucceeded != items/size || done.RowsWritten != items {
		t.Fatalf("run %s, %+v; want succeeded with %d batches and %d rows", done.State, done.Counters, items/size, items)
	}
	t.Logf("at most %d batches queued or running", most.Load())
	if n := most.Load(); n > inFlight {
		t.Errorf("%d batches queued or running at once, max_in_flight is %d", n, inFlight)
	}
	var wrong int64
	if err := e.db.Model(&e2edefs.Item{}).Where("counter <> 1").Count(&wrong).Error; err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d items not processed exactly once", wrong)
	}
}
