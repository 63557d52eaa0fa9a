package engine

import "time"

// Runtime decides when an active flow runs next.
type Runtime interface {
	// Next returns when the flow should run after a run created at last
	// (zero: never ran) — zero time means not again.
	Next(last time.Time) time.Time
	// String describes the runtime ("once", "every 30s", "cron */5 * * * *").
	String() string
}

// Triggered is implemented by jobs that run by themselves (flows).
type Triggered interface {
	Runtime() Runtime
}
