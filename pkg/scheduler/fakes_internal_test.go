package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// The loops' unit tests run on a real SQLite store (a fake would have to
// reimplement its state machines) and on the fakes below for the task
// queue, the pipeline and the workers' registry.

// newTestStore returns a migrated SQLite store in a temporary file.
func newTestStore(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	url := testenv.SQLiteURL(t)
	if err := sqlstore.MigrateURL(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newTestRun creates a backfill run with opts (defaults filled in for a
// test), in state scheduled.
func newTestRun(t *testing.T, st store.Store, opts store.RunOptions) store.Run {
	t.Helper()
	if opts.BatchSize == 0 {
		opts.BatchSize = 10
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 1
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = 2
	}
	r, err := st.CreateRun(context.Background(), store.NewRun{Definition: "test", Kind: store.KindBackfill, CreatedBy: "test", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getRun(t *testing.T, st store.Store, id int64) store.Run {
	t.Helper()
	r, err := st.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeQueue is a task queue in memory: task id → state.
type fakeQueue struct {
	mu      sync.Mutex
	tasks   map[string]tasks.TaskState
	enqueue []string // task ids in the order they were enqueued (added ones only)
	deleted []string
	err     error // returned by EnqueueBatch when set
}

var _ taskInspector = (*fakeQueue)(nil)

func newFakeQueue() *fakeQueue { return &fakeQueue{tasks: map[string]tasks.TaskState{}} }

func (q *fakeQueue) EnqueueBatch(ctx context.Context, p tasks.BatchPayload, o tasks.EnqueueOptions) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return false, q.err
	}
	if o.MaxAttempts < 1 {
		return false, fmt.Errorf("enqueue %s: MaxAttempts %d", p.TaskID(), o.MaxAttempts)
	}
	id := p.TaskID()
	if _, ok := q.tasks[id]; ok {
		return false, nil
	}
	q.tasks[id] = tasks.TaskPending
	q.enqueue = append(q.enqueue, id)
	return true, nil
}

func (q *fakeQueue) DeleteBatchTask(ctx context.Context, p tasks.BatchPayload) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.tasks, p.TaskID())
	q.deleted = append(q.deleted, p.TaskID())
	return nil
}

func (q *fakeQueue) BatchTaskState(ctx context.Context, p tasks.BatchPayload) (tasks.TaskState, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s, ok := q.tasks[p.TaskID()]; ok {
		return s, nil
	}
	return tasks.TaskMissing, nil
}

func (q *fakeQueue) set(id string, s tasks.TaskState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks[id] = s
}

func (q *fakeQueue) enqueued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.enqueue...)
}

// fakePipeline plans keys 1..n as decimal strings.
type fakePipeline struct {
	n           int
	incremental bool
	maxBatches  int

	mu     sync.Mutex
	counts []error // Count's results in turn (nil: n); past the end, n
	calls  int     // Count calls
}

func (p *fakePipeline) Start(watermark string) string { return watermark }

func (p *fakePipeline) Next(ctx context.Context, lo string, size int) (string, bool, bool, error) {
	from := 0
	if lo != "" {
		var err error
		if from, err = strconv.Atoi(lo); err != nil {
			return "", false, false, err
		}
	}
	if from >= p.n {
		return "", false, false, nil
	}
	hi := min(from+size, p.n)
	return strconv.Itoa(hi), hi < p.n, true, nil
}

func (p *fakePipeline) Count(ctx context.Context) (int64, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.calls
	p.calls++
	if i < len(p.counts) && p.counts[i] != nil {
		return 0, false, p.counts[i]
	}
	return int64(p.n), false, nil
}

func (p *fakePipeline) countCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func (p *fakePipeline) Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error) {
	return store.Result{}, errors.New("fakePipeline does not process")
}
func (p *fakePipeline) WritesTo() *gorm.DB { return nil }
func (p *fakePipeline) Incremental() bool  { return p.incremental }

// limitedPipeline is a fakePipeline whose runs plan at most maxBatches.
type limitedPipeline struct{ *fakePipeline }

func (p limitedPipeline) MaxBatches() int { return p.maxBatches }

var (
	_ engine.Pipeline    = (*fakePipeline)(nil)
	_ engine.PlanLimiter = limitedPipeline{}
)

// newTestPlanner returns a planner on st and a fake queue whose every run
// plans with pipe.
func newTestPlanner(t *testing.T, st plannerStore, pipe engine.Pipeline) (*runPlanner, *fakeQueue) {
	q := newFakeQueue()
	open := func(ctx context.Context, r store.Run) (engine.Pipeline, error) { return pipe, nil }
	p := newRunPlanner(st, q, open, &wakeup{}, zaptest.NewLogger(t))
	return p, q
}

// claim claims batch seq of run id as a worker would and returns the
// claim's token.
func claim(t *testing.T, st store.Store, id, seq int64) string {
	t.Helper()
	token := fmt.Sprintf("w%d-%d", id, seq)
	if _, err := st.ClaimBatch(context.Background(), id, seq, store.Claim{Worker: "w", Token: token, Lease: time.Minute}); err != nil {
		t.Fatalf("claim batch %d: %v", seq, err)
	}
	return token
}

// complete claims and completes batch seq of run id.
func complete(t *testing.T, st store.Store, id, seq int64) {
	t.Helper()
	if _, err := st.CompleteBatch(context.Background(), id, seq, claim(t, st, id, seq), store.Result{RowsRead: 1, RowsWritten: 1}); err != nil {
		t.Fatalf("complete batch %d: %v", seq, err)
	}
}

// fail claims batch seq of run id and fails it for good.
func fail(t *testing.T, st store.Store, id, seq int64) {
	t.Helper()
	if _, err := st.FailBatch(context.Background(), id, seq, claim(t, st, id, seq), store.Failure{Message: "boom", Final: true}); err != nil {
		t.Fatalf("fail batch %d: %v", seq, err)
	}
}
