package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// SpecLoader returns the engine.Loader of flows defined as specs in st:
// it reads a flow's spec (its latest version, or the one a run records),
// compiles it as Spec.Compile does and returns the same kind of job as
// Register makes of a Go flow, so its connectors are built once per process
// (per engine.Resources) and shared by its runs. Compiled jobs are cached
// per (name, version): versions are never reused. Set it on a registry with
// engine.Registry.SetLoader.
func SpecLoader(st store.Store) engine.Loader {
	return &specLoader{st: st, jobs: map[specKey]engine.Job{}}
}

type specKey struct {
	name    string
	version int64
}

type specLoader struct {
	st   store.Store
	mu   sync.Mutex
	jobs map[specKey]engine.Job
}

// maxCachedSpecs bounds the loader's cache; past it the cache starts over.
const maxCachedSpecs = 1024

// LoadJob implements engine.Loader.
func (l *specLoader) LoadJob(ctx context.Context, name string, version int64) (engine.Job, error) {
	if version < 0 {
		return nil, fmt.Errorf("definition %q: %w: version must not be negative, got %d", name, engine.ErrUnknownDefinition, version)
	}
	if version == 0 {
		// The latest version of a flow that still exists (a deleted one's
		// versions stay readable, for its runs, but it cannot start again).
		d, err := l.st.GetDefinition(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("definition %q: %w: no such definition", name, engine.ErrUnknownDefinition)
		}
		if err != nil {
			return nil, fmt.Errorf("read definition %q: %w", name, err)
		}
		if d.Origin != store.OriginSpec {
			return nil, fmt.Errorf("definition %q: %w: it is defined in code that is not compiled into this process", name, engine.ErrUnknownDefinition)
		}
		version = d.Version
	}
	key := specKey{name, version}
	l.mu.Lock()
	j, ok := l.jobs[key]
	l.mu.Unlock()
	if ok {
		return j, nil
	}
	fs, err := l.st.GetFlowSpec(ctx, name, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("definition %q: %w: no spec version %d", name, engine.ErrUnknownDefinition, version)
	}
	if err != nil {
		return nil, fmt.Errorf("read spec of flow %q version %d: %w", name, version, err)
	}
	j, err = CompileStored(fs)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.jobs) >= maxCachedSpecs {
		clear(l.jobs)
	}
	if cached, ok := l.jobs[key]; ok {
		j = cached // another caller compiled it first: share its connectors
	} else {
		l.jobs[key] = j
	}
	l.mu.Unlock()
	return j, nil
}

// CompileStored compiles one stored version of a spec flow into its job,
// whose Definition has Origin spec and the version. A spec this binary
// cannot compile (a connector or transform it does not link) is an error
// naming the flow, the version and the field.
func CompileStored(fs store.FlowSpec) (engine.Job, error) {
	s, err := ParseSpec(fs.Spec)
	if err != nil {
		return nil, fmt.Errorf("flow %q version %d: %w", fs.Name, fs.Version, err)
	}
	if s.Name != fs.Name {
		return nil, fmt.Errorf("flow %q version %d: the spec is named %q", fs.Name, fs.Version, s.Name)
	}
	f, err := s.Compile()
	if err != nil {
		return nil, fmt.Errorf("flow %q version %d: %w", fs.Name, fs.Version, err)
	}
	jb, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("flow %q version %d: %w", fs.Name, fs.Version, err)
	}
	j := jb.(*job)
	j.meta.Origin, j.meta.Version = store.OriginSpec, fs.Version
	if !fs.CreatedAt.IsZero() {
		j.meta.UpdatedAt = fs.CreatedAt
	}
	return j, nil
}

// Record returns what Store.SaveFlowSpec needs to store s (compiled first:
// an invalid spec is a *FieldError and nothing to store): its canonical
// JSON, description and default run options.
func (s Spec) Record() (store.SaveFlowSpec, error) {
	f, err := s.Compile()
	if err != nil {
		return store.SaveFlowSpec{}, err
	}
	j, err := New(f)
	if err != nil {
		return store.SaveFlowSpec{}, err
	}
	js, err := json.Marshal(s.canonical())
	if err != nil {
		return store.SaveFlowSpec{}, fmt.Errorf("encode spec %q: %w", s.Name, err)
	}
	return store.SaveFlowSpec{Name: s.Name, Description: s.Description, Spec: js, Defaults: j.Definition().Defaults}, nil
}
