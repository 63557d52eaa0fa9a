package engine

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknownDefinition means no job of that name is compiled into the
// process and its loader (if any) knows none either.
var ErrUnknownDefinition = errors.New("unknown definition")

// Loader finds jobs that are not compiled into the process: flows defined
// at run time and kept in the store (see flows.SpecLoader).
type Loader interface {
	// LoadJob returns the job of definition name at version (0: its
	// latest). An unknown name or version is an error matching
	// ErrUnknownDefinition; anything else (the store unreachable, a spec
	// this binary cannot compile) is returned as it is.
	LoadJob(ctx context.Context, name string, version int64) (Job, error)
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(ctx context.Context, name string, version int64) (Job, error)

// LoadJob implements Loader.
func (f LoaderFunc) LoadJob(ctx context.Context, name string, version int64) (Job, error) {
	return f(ctx, name, version)
}

// SetLoader makes Resolve ask l for names the registry does not hold; nil
// removes it.
func (r *Registry) SetLoader(l Loader) {
	r.mu.Lock()
	r.loader = l
	r.mu.Unlock()
}

// Loader returns the registry's loader, or nil.
func (r *Registry) Loader() Loader {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loader
}

// Resolve returns the job of definition name: the registered one when the
// code defines it (version is then ignored), otherwise the loader's at
// version (0: the latest). An unknown definition is an error matching
// ErrUnknownDefinition that names it.
func (r *Registry) Resolve(ctx context.Context, name string, version int64) (Job, error) {
	if j, ok := r.Lookup(name); ok {
		return j, nil
	}
	l := r.Loader()
	if l == nil {
		return nil, fmt.Errorf("definition %q: %w: not registered in this process", name, ErrUnknownDefinition)
	}
	j, err := l.LoadJob(ctx, name, version)
	if err != nil {
		if errors.Is(err, ErrUnknownDefinition) {
			return nil, err
		}
		if version > 0 {
			return nil, fmt.Errorf("load definition %q version %d: %w", name, version, err)
		}
		return nil, fmt.Errorf("load definition %q: %w", name, err)
	}
	return j, nil
}
