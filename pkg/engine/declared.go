package engine

import "github.com/dripflow/dripflow/pkg/store"

// Declarer is implemented by jobs that can tell the run options their
// definition declares from those the package defaults filled in
// (Job.Defaults gives both merged). A process's own defaults
// (DRIPFLOW_DEFAULT_*) apply only to options a definition leaves zero.
type Declarer interface {
	// DeclaredOptions returns the options as the definition wrote them:
	// zero where it left the default.
	DeclaredOptions() store.RunOptions
}
