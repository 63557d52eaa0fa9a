package flows

import (
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

var _ engine.Declarer = (*job)(nil)

// DeclaredOptions returns the flow's Options as written (a spec's options).
func (j *job) DeclaredOptions() store.RunOptions { return j.f.Options }
