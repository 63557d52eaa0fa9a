package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store"
)

// countOnce counts the run's records in the background: once, or again
// countRetry after a count (or recording its total) failed. The channel it
// returns (nil when it starts no count) is closed once the count has fixed
// the instant it counts at (keyset.OnSnapshot) or has ended.
func (p *runPlanner) countOnce(ctx context.Context, st *runState, r store.Run, pipe engine.Pipeline, log *zap.Logger) <-chan struct{} {
	if r.Total >= 0 || pipe.Incremental() || !st.startCount(time.Now()) {
		return nil
	}
	snap := make(chan struct{})
	var once sync.Once
	taken := func() { once.Do(func() { close(snap) }) }
	go func() {
		defer taken()
		err := p.count(keyset.OnSnapshot(ctx, taken), r, pipe)
		switch {
		case err == nil, errors.Is(err, engine.ErrCannotCount):
			st.endCount(true, time.Time{})
		case ctx.Err() != nil:
			st.endCount(false, time.Time{}) // the leader stopped: count again when it leads
		default:
			log.Warn("count records", zap.Error(err))
			st.endCount(false, time.Now().Add(p.countRetry))
		}
	}()
	return snap
}

// count counts the run's records and records the total.
func (p *runPlanner) count(ctx context.Context, r store.Run, pipe engine.Pipeline) error {
	n, est, err := pipe.Count(ctx)
	if err != nil {
		return err
	}
	if err := p.store.SetRunTotal(context.WithoutCancel(ctx), r.ID, n, est); err != nil {
		return fmt.Errorf("record total: %w", err)
	}
	return nil
}

// startCount reports whether a count of the run should start at now (none
// is running, none succeeded, a failed one's retry is due) and marks it
// running.
func (st *runState) startCount(now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := &st.count
	if c.running || c.done || now.Before(c.retryAt) {
		return false
	}
	c.running = true
	return true
}

// endCount records a count's end: done, or to be retried at retryAt.
func (st *runState) endCount(done bool, retryAt time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.count = countState{done: done, retryAt: retryAt}
}
