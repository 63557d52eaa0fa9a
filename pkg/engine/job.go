package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"go.uber.org/zap"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// Job is a registered definition compiled for the engine.
type Job interface {
	// Definition returns the metadata persisted in the store and shown in
	// the UI.
	Definition() store.Definition
	// Defaults returns the run options a run gets unless it overrides them.
	Defaults() store.RunOptions
	// Params returns the params schema.
	Params() params.Schema
	// CanonicalParams validates raw params and returns their canonical JSON
	// (defaults filled in), or a *params.Error.
	CanonicalParams(raw json.RawMessage) (json.RawMessage, error)
	// Open prepares the job for one run's params.
	Open(ctx context.Context, env Env, rawParams json.RawMessage) (Pipeline, error)
}

// Env is what a job gets from the process that runs it.
type Env struct {
	// DB is the application database the job reads and writes.
	DB     *gorm.DB
	Logger *zap.Logger
	// Resources are the process's named connections and the clients
	// connectors share; nil means only DB.
	Resources *Resources
}

// Acker is implemented by pipelines whose source must hear that a batch's
// checkpoint committed (a stream's consumer group, a broker's delivery):
// the worker calls Ack once the checkpoint is durable. An Ack that fails is
// logged; the batch stays succeeded and the source may deliver its records
// again, which sinks tolerate by their guarantee.
// BatchProcessor is implemented by pipelines that need to know which batch
// they process (a sink's idempotency key is the run and batch); the worker
// calls ProcessBatch instead of Process for them.
type BatchProcessor interface {
	ProcessBatch(ctx context.Context, tx *gorm.DB, b store.Batch) (store.Result, error)
}

type Acker interface {
	Ack(ctx context.Context, lo, hi string) error
}

// Pipeline is one run's view of a job.
type Pipeline interface {
	// Start returns the lower bound of the run's first batch: "" for a full
	// pass, the flow's watermark for an incremental one.
	Start(watermark string) string
	// Next returns the upper bound (encoded) of the batch of at most size
	// records after lo, and whether more may follow; ok is false when no
	// record follows lo.
	Next(ctx context.Context, lo string, size int) (hi string, more, ok bool, err error)
	// Count returns the number of records in scope; estimated is true when
	// counting exactly would be too slow.
	Count(ctx context.Context) (n int64, estimated bool, err error)
	// Process runs the batch (lo, hi]. tx, when not nil, is an open
	// transaction on Env.DB in which the job must write (it commits with the
	// batch's checkpoint); when nil the job manages its own transactions.
	Process(ctx context.Context, tx *gorm.DB, lo, hi string) (store.Result, error)
	// WritesTo returns the database the job writes to, or nil when it writes
	// elsewhere (a file, an API).
	WritesTo() *gorm.DB
	// Incremental reports whether a succeeded run advances the flow's
	// watermark to its last planned key.
	Incremental() bool
}

// ErrCannotCount is returned by Pipeline.Count when the job's records cannot
// be counted ahead (a stream, a queue); the run shows no total.
var ErrCannotCount = errors.New("records cannot be counted ahead")

// PlanLimiter is implemented by pipelines whose runs plan at most
// MaxBatches batches (0: no bound): an unbounded source's run must end
// for its offset to be committed.
type PlanLimiter interface {
	MaxBatches() int
}

// Registry holds jobs by name.
// Jobs of flows defined at run time are not registered: Resolve finds them
// through the registry's Loader.
type Registry struct {
	mu     sync.RWMutex
	jobs   map[string]Job
	loader Loader
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{jobs: map[string]Job{}} }

// DefaultRegistry is where backfills.Register and flows.Register put jobs.
var DefaultRegistry = NewRegistry()

// Register adds a job; a second job with the same name is an error.
func (r *Registry) Register(j Job) error {
	name := j.Definition().Name
	if err := j.Definition().Validate(); err != nil {
		return fmt.Errorf("register %q: %w", name, err)
	}
	if err := j.Defaults().Validate(); err != nil {
		return fmt.Errorf("register %q: default options: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.jobs[name]; dup {
		return fmt.Errorf("register %q: a definition with this name is already registered", name)
	}
	r.jobs[name] = j
	return nil
}

// Lookup returns the job named name among the registered ones (compiled
// into the process). Resolve also finds flows defined at run time.
func (r *Registry) Lookup(name string) (Job, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	j, ok := r.jobs[name]
	return j, ok
}

// Jobs returns every job ordered by name.
func (r *Registry) Jobs() []Job {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Job, 0, len(r.jobs))
	for _, j := range r.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Definition().Name < out[b].Definition().Name })
	return out
}

// Sync stores every job's definition, so processes without the code (and the
// UI) can show them, and flows get their state.
func (r *Registry) Sync(ctx context.Context, st store.Store) error {
	for _, j := range r.Jobs() {
		if _, err := st.UpsertDefinition(ctx, j.Definition()); err != nil {
			return fmt.Errorf("store definition %q: %w", j.Definition().Name, err)
		}
	}
	return nil
}
