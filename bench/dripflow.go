package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// dripflowEnv is what an in-process dripflow runs on: a store, the
// application database and a Redis database of its own.
type dripflowEnv struct {
	st    store.Store
	db    *gorm.DB
	rdb   *redis.Client
	close func()

	// What processes need to open the same: the Redis database's URL, the
	// database's ("" when the Redis store runs without one) and the
	// store's kind.
	redisURL   string
	dbURL      string
	redisStore bool
}

// dripflowEnv opens a store for the database at url: the SQL store in that
// database (the application database is then the store's own handle, so
// checkpoints commit in the batches' transactions, as in production), or
// the Redis store with the application database opened beside it. url ""
// means no application database (the no-op job needs none); the SQL store
// then gets a database of its own.
func (r *runner) dripflowEnv(ctx context.Context, url string, redisStore bool) (*dripflowEnv, error) {
	rurl, rdb, release, err := r.svc.redisDB(ctx)
	if err != nil {
		return nil, err
	}
	if redisStore {
		st, err := redisstore.New(rdb, redisstore.Config{})
		if err != nil {
			release()
			return nil, err
		}
		de := &dripflowEnv{st: st, rdb: rdb, close: release, redisURL: rurl, dbURL: url, redisStore: true}
		if url != "" {
			if de.db, err = sqlstore.OpenDB(ctx, url, 0); err != nil {
				release()
				return nil, err
			}
			de.close = func() { closeGorm(de.db); release() }
		}
		return de, nil
	}
	own := "" // a database made for the store alone, dropped on close
	if url == "" {
		if own, url, err = r.svc.createDB(ctx, "", false); err != nil {
			release()
			return nil, err
		}
		if err := sqlstore.MigrateURL(ctx, url); err != nil {
			release()
			return nil, err
		}
	}
	st, err := sqlstore.Open(ctx, url, sqlstore.Config{})
	if err != nil {
		release()
		return nil, err
	}
	return &dripflowEnv{st: st, db: st.DB(), rdb: rdb, redisURL: rurl, dbURL: url, close: func() {
		st.Close()
		release()
		if own != "" {
			if err := r.svc.dropDB(context.WithoutCancel(ctx), own); err != nil {
				r.logf("warning: %v", err)
			}
		}
	}}, nil
}

// runOnCluster starts a scheduler and a worker of the given concurrency on
// de, runs n to its end, and stops them.
func (r *runner) runOnCluster(ctx context.Context, de *dripflowEnv, concurrency int, n control.NewRun) (runResult, error) {
	cl, err := startCluster(ctx, clusterConfig{Store: de.st, DB: de.db, Redis: de.rdb, Registry: r.reg, Concurrency: concurrency})
	if err != nil {
		return runResult{}, err
	}
	defer cl.stop()
	busy := busyInProcess()
	rr, err := runToEnd(ctx, cl.ctl, de.st, n, r.cfg.Timeout)
	rr.WorkerBusy = busyInProcess() - busy
	if err == nil {
		r.writeTimeline(ctx, de, rr, n, "inproc")
	}
	return rr, err
}

// writeTimeline writes the run's batches as CSV into the timeline
// directory, when one was asked for.
func (r *runner) writeTimeline(ctx context.Context, de *dripflowEnv, rr runResult, n control.NewRun, shape string) {
	dir := r.cfg.Timeline
	if dir == "" {
		return
	}
	name := strings.NewReplacer("*", "", "/", "_").Replace(fmt.Sprintf("%s-%T-%s-%d.csv", n.Definition, de.st, shape, time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.logf("warning: timeline: %v", err)
		return
	}
	if err := dumpTimeline(ctx, de.st, rr.Run.ID, filepath.Join(dir, name)); err != nil {
		r.logf("warning: timeline: %v", err)
	}
}

func closeGorm(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// Seconds is a duration that JSON shows as seconds.
type Seconds time.Duration

// Seconds returns s in seconds.
func (s Seconds) Seconds() float64 { return time.Duration(s).Seconds() }

// MarshalJSON writes seconds with microsecond precision.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconvFloat(time.Duration(s).Seconds(), 6)), nil
}

// dumpTimeline writes the run's batches (seq, created, enqueued, started,
// finished, in ms since the first batch was created) to path as CSV.
func dumpTimeline(ctx context.Context, st store.Store, runID int64, path string) error {
	var bs []store.Batch
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := st.ListBatches(ctx, runID, f)
		if err != nil {
			return err
		}
		bs = append(bs, page.Items...)
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if len(bs) == 0 {
		return nil
	}
	t0 := bs[0].CreatedAt
	ms := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return strconvFloat(float64(t.Sub(t0).Microseconds())/1000, 3)
	}
	var sb strings.Builder
	sb.WriteString("seq,created_ms,enqueued_ms,started_ms,finished_ms,duration_ms,attempts\n")
	for _, b := range bs {
		created := b.CreatedAt
		fmt.Fprintf(&sb, "%d,%s,%s,%s,%s,%s,%d\n", b.Seq, ms(&created), ms(b.EnqueuedAt), ms(b.StartedAt), ms(b.FinishedAt),
			strconvFloat(float64(b.Duration.Microseconds())/1000, 3), b.Attempts)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
