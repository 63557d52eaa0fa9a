package scheduler

import (
	"context"
	"time"
)

// every calls tick every interval until ctx ends. The leader's maintenance loops (janitor, reconciler, rescuer)
// run on it, each in a goroutine of its own, so a slow one holds up neither
// the others nor planning.
func every(ctx context.Context, interval time.Duration, tick func(context.Context)) {
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
