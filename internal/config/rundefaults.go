package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// readRunDefaults reads DRIPFLOW_DEFAULT_SLEEP_MS, _MAX_IN_FLIGHT and
// _ROWS_PER_SECOND: whole numbers within the store's limits for run
// options, or unset. A bad value is an error naming the variable, so a
// process refuses to start rather than run unthrottled.
func (c *Config) readRunDefaults(get func(name, def string) string) error {
	for _, v := range []struct {
		name     string
		min, max int64
		what     string
		dst      func(int64)
	}{
		{"DEFAULT_SLEEP_MS", 0, store.MaxSleep.Milliseconds(), "milliseconds between two batches of a run (0: none)",
			func(n int64) { c.DefaultSleep = time.Duration(n) * time.Millisecond }},
		{"DEFAULT_MAX_IN_FLIGHT", 1, store.MaxMaxInFlight, "batches of a run queued or running at once",
			func(n int64) { c.DefaultMaxInFlight = int(n) }},
		{"DEFAULT_ROWS_PER_SECOND", 0, store.MaxRowsPerSecond, "rows per second of a run (0: unlimited)",
			func(n int64) { c.DefaultRowsPerSecond = int(n) }},
	} {
		raw := get(v.name, "")
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < v.min || n > v.max {
			return fmt.Errorf("DRIPFLOW_%s must be a whole number between %d and %d (%s), got %q", v.name, v.min, v.max, v.what, raw)
		}
		v.dst(n)
	}
	return nil
}
