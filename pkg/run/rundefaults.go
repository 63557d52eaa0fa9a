package run

import (
	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/control"
)

// RunDefaults are the DRIPFLOW_DEFAULT_* run options of cfg, as the
// processes that create runs (web, scheduler, dev) apply them.
func RunDefaults(cfg config.Config) control.Defaults {
	return control.Defaults{Sleep: cfg.DefaultSleep, MaxInFlight: cfg.DefaultMaxInFlight, RowsPerSecond: cfg.DefaultRowsPerSecond}
}
