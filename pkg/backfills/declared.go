package backfills

import (
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

var _ engine.Declarer = (*job[struct{}, struct{}])(nil)

// DeclaredOptions returns the definition's Options as written.
func (j *job[M, P]) DeclaredOptions() store.RunOptions { return j.d.Options }
