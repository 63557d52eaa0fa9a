package control

import (
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// Defaults are a process's own run options (DRIPFLOW_DEFAULT_SLEEP_MS,
// DRIPFLOW_DEFAULT_MAX_IN_FLIGHT, DRIPFLOW_DEFAULT_ROWS_PER_SECOND), so a
// run nobody tuned is throttled the way production wants. A zero field is
// not set. Precedence, highest first: the run's own value (an explicit 0
// included), the definition's declared option, these, the built-in
// default.
type Defaults struct {
	Sleep         time.Duration
	MaxInFlight   int
	RowsPerSecond int
}

// Where an effective default comes from (Sources' values).
const (
	SourceDefinition = "definition"
	SourceBuiltIn    = "built-in"
)

// Env names of the defaults, as Sources reports them.
const (
	EnvDefaultSleep         = "DRIPFLOW_DEFAULT_SLEEP_MS"
	EnvDefaultMaxInFlight   = "DRIPFLOW_DEFAULT_MAX_IN_FLIGHT"
	EnvDefaultRowsPerSecond = "DRIPFLOW_DEFAULT_ROWS_PER_SECOND"
)

// Validate reports a default outside the store's limits, naming its
// variable.
func (d Defaults) Validate() error {
	switch {
	case d.Sleep < 0 || d.Sleep > store.MaxSleep:
		return fmt.Errorf("%s must be between 0 and %d (%s), got %d", EnvDefaultSleep, store.MaxSleep.Milliseconds(), store.MaxSleep, d.Sleep.Milliseconds())
	case d.MaxInFlight < 0 || d.MaxInFlight > store.MaxMaxInFlight:
		return fmt.Errorf("%s must be between 1 and %d, got %d", EnvDefaultMaxInFlight, store.MaxMaxInFlight, d.MaxInFlight)
	case d.RowsPerSecond < 0 || d.RowsPerSecond > store.MaxRowsPerSecond:
		return fmt.Errorf("%s must be between 0 (unlimited) and %d, got %d", EnvDefaultRowsPerSecond, store.MaxRowsPerSecond, d.RowsPerSecond)
	}
	return nil
}

// EffectiveDefaults returns the options a run of j gets when it sets none,
// and where sleep, max_in_flight and rows_per_second come from ("definition",
// an environment variable's name, or "built-in"; keyed by the API's option
// names sleep_ms, max_in_flight and rows_per_second).
func (c *Controller) EffectiveDefaults(j engine.Job) (store.RunOptions, map[string]string) {
	o := j.Defaults()
	declared := o
	if d, ok := j.(engine.Declarer); ok {
		declared = d.DeclaredOptions()
	} else {
		// Without the definition's own options, a max in flight is taken
		// as declared: only zero sleep and rate are known to be unset.
		declared.Sleep, declared.RowsPerSecond = 0, 0
	}
	src := map[string]string{}
	pick := func(name string, declaredSet bool, envSet bool, apply func(), env string) {
		switch {
		case declaredSet:
			src[name] = SourceDefinition
		case envSet:
			apply()
			src[name] = env
		default:
			src[name] = SourceBuiltIn
		}
	}
	d := c.Defaults
	pick("sleep_ms", declared.Sleep != 0, d.Sleep != 0, func() { o.Sleep = d.Sleep }, EnvDefaultSleep)
	pick("max_in_flight", declared.MaxInFlight != 0, d.MaxInFlight != 0, func() { o.MaxInFlight = d.MaxInFlight }, EnvDefaultMaxInFlight)
	pick("rows_per_second", declared.RowsPerSecond != 0, d.RowsPerSecond != 0, func() { o.RowsPerSecond = d.RowsPerSecond }, EnvDefaultRowsPerSecond)
	return o, src
}
