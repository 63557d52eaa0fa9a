package e2e

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// Issue 12's repro: a worker frozen mid-batch (SIGSTOP), the run cancelled,
// the worker then killed and another started. The run used to stay
// cancelling for good (its batch running under an expired claim). Now the
// frozen worker's batches are cancelled and the run ends cancelled; when a
// frozen worker wakes up instead, its late commit is refused and its rows
// are not written.
func TestProcessCancelWithFrozenWorker(t *testing.T) {
	c := newCluster(t)
	const items, size = 4000, 500
	c.seedItems(items)
	c.scheduler()
	frozen := c.worker(2)
	killed := c.worker(2)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), Params: json.RawMessage(`{"sleep_ms":4000}`)})
	c.waitFor("4 batches running", time.Minute, func() bool { return c.run(r.ID).BatchesRunning == 4 })
	frozen.cmd.Process.Signal(syscall.SIGSTOP)
	killed.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { frozen.cmd.Process.Signal(syscall.SIGCONT); killed.cmd.Process.Signal(syscall.SIGCONT) })
	got, err := c.ctl.Cancel(context.Background(), r.ID)
	if err != nil || got.State != store.RunCancelling {
		t.Fatalf("cancel: %s, %v; want cancelling", got.State, err)
	}
	killed.kill(t)
	c.worker(2)
	r = c.waitDone(r.ID, time.Minute)
	if r.State != store.RunCancelled || r.BatchesRunning != 0 || r.BatchesCancelled != r.BatchesTotal() {
		t.Fatalf("run %s with counters %+v, want cancelled with every batch cancelled", r.State, r.Counters)
	}
	for _, do := range []func(context.Context, int64) (store.Run, error){c.ctl.Pause, c.ctl.Resume, c.ctl.Cancel} {
		if _, err := do(context.Background(), r.ID); err == nil {
			t.Errorf("a control action on the cancelled run succeeded")
		}
	}
	// The frozen worker wakes up with its batches' work done: its commits
	// are refused, nothing of them is written.
	frozen.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(6 * time.Second)
	var written int64
	if err := c.db.Model(&e2edefs.Item{}).Select("coalesce(sum(counter), 0)").Scan(&written).Error; err != nil {
		t.Fatal(err)
	}
	after := c.run(r.ID)
	if written != 0 || after.RowsWritten != 0 || after.State != store.RunCancelled || after.BatchesCancelled != r.BatchesCancelled {
		t.Fatalf("after the frozen worker woke up: %d rows changed, run %s %+v; want nothing written and the run unchanged",
			written, after.State, after.Counters)
	}
}
