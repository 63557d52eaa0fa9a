package scheduler

import (
	"context"
	"time"
)

// every calls tick every interval until ctx ends, and once at the start when
// now is set. The leader's maintenance loops (janitor, reconciler, rescuer)
// run on it, each in a goroutine of its own, so a slow one holds up neither
// the others nor planning.
func every(ctx context.Context, interval time.Duration, now bool, tick func(context.Context)) {
	if now {
		tick(ctx)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick(ctx)
		}
	}
}
