package run

import (
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
	"github.com/dripflow/dripflow/pkg/store"
)

// loadSpecs lets reg find flows defined as specs in st (created through the
// API, the UI or DRIPFLOW_FLOWS_DIR), so the process runs them like the
// flows compiled into it. A loader the program set itself is kept.
func loadSpecs(reg *engine.Registry, st store.Store) {
	if reg.Loader() == nil {
		reg.SetLoader(flows.SpecLoader(st))
	}
}
