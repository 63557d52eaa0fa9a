package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// runState is what the leader keeps in memory about one active run. It is
// a cache: a new leader rebuilds it from the store (the pipeline is opened
// again, pacing starts afresh, an unfinished count starts over).
type runState struct {
	mu     sync.Mutex
	pipe   engine.Pipeline // opened once per run
	nextAt time.Time       // pacing: when the run's next batch may start
	count  countState
	health healthState // see health.go
	adapt  adaptState  // an adaptive run's batch size (adaptive.go)
}

// countState is how far the background count of a run's records got.
type countState struct {
	running bool      // a count is under way
	done    bool      // the total is recorded, or cannot be counted
	retryAt time.Time // after a failed count: not again before this
}

// pipeline returns the run's pipeline, opening it with open the first time.
func (st *runState) pipeline(ctx context.Context, r store.Run, open pipelineOpener) (engine.Pipeline, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pipe != nil {
		return st.pipe, nil
	}
	p, err := open(ctx, r)
	if err != nil {
		return nil, err
	}
	st.pipe = p
	return p, nil
}

// runStates holds the state of every run the leader is looking after.
type runStates struct {
	mu   sync.Mutex
	runs map[int64]*runState
}

// get returns run id's state, making it on first use.
func (s *runStates) get(id int64) *runState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs == nil {
		s.runs = map[int64]*runState{}
	}
	st, ok := s.runs[id]
	if !ok {
		st = &runState{}
		s.runs[id] = st
	}
	return st
}

// forget drops run id's state (the run ended or left the leader's hands).
func (s *runStates) forget(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, id)
}

// len returns how many runs have state.
func (s *runStates) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runs)
}

// pipelineOpener opens a run's pipeline (in New: resolve the run's
// definition and spec version in the registry, then Job.Open).
type pipelineOpener func(ctx context.Context, r store.Run) (engine.Pipeline, error)

// openPipeline is the pipelineOpener of a registry and environment.
func openPipeline(jobs *engine.Registry, env engine.Env) pipelineOpener {
	return func(ctx context.Context, r store.Run) (engine.Pipeline, error) {
		job, err := jobs.Resolve(ctx, r.Definition, r.SpecVersion)
		if err != nil {
			return nil, err
		}
		return job.Open(ctx, env, r.Params)
	}
}
