package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisurl"
	"github.com/dripflow/dripflow/pkg/store"
)

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "dripflow:"

// maxStep is the most batches one CancelRun or RetryBatches script moves.
const maxStep = 1000

// Config configures a Store. The zero value is usable.
type Config struct {
	// Prefix starts every key the store uses; "" means DefaultPrefix. Two
	// stores with different prefixes share nothing.
	Prefix string
	// Now is the store's clock; nil means time.Now. Every timestamp and lease
	// comes from it, never from the Redis server.
	Now func() time.Time
}

// Store is a store.Store on one Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	owned  bool // Close closes client
	prefix string
	now    func() time.Time
	step   int // batches per CancelRun / RetryBatches script
	// maxEvents is how many events a run keeps (store.MaxRunEvents).
	maxEvents int

	kindIndexed atomic.Bool // runs:kind:* known to hold every run (see indexKinds)
}

var _ store.Store = (*Store)(nil)

// New returns a Store that uses client, which stays the caller's to close. The
// client must reach a single Redis primary: Redis Cluster and Ring clients are
// refused (see the package documentation).
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	switch client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		return nil, fmt.Errorf("%w (got a %T): its scripts update indexes shared by every run, which a Cluster spreads over hash slots; "+
			"keep the Redis store on one primary (redis:// or redis-sentinel://) or use the SQL store beside a Cluster queue (docs/storage.md)", ErrCluster, client)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{client: client, prefix: cfg.Prefix, now: cfg.Now, step: maxStep, maxEvents: store.MaxRunEvents}, nil
}

// ErrCluster is returned by New and Open for a Redis Cluster (or Ring)
// client: the store needs one primary.
var ErrCluster = errors.New("redisstore: the Redis store cannot run on a Redis Cluster")

// Open connects to the Redis at redisURL (redis://, rediss://, unix:// as
// redis.ParseURL reads them, or redis-sentinel://host1,host2,…/master for a
// primary found through Sentinel), checks that it answers, and returns a
// Store whose Close closes that connection. A redis-cluster:// URL is
// refused with ErrCluster.
func Open(ctx context.Context, redisURL string, cfg Config) (*Store, error) {
	opts, err := redisurl.Parse(redisURL)
	if err != nil {
		return nil, fmt.Errorf("open redis store: %w", err) // never shows a password
	}
	if opts.Kind == redisurl.Cluster {
		return nil, fmt.Errorf("open redis store at %s: %w: use a redis:// or redis-sentinel:// URL (docs/storage.md)", opts, ErrCluster)
	}
	client := opts.NewClient()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("open redis store at %s: %w", opts.Where(), err)
	}
	s, err := New(client, cfg)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Close closes the Redis client if Open created it; a client passed to New
// is left open.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close redis store: %w", err)
	}
	return nil
}

func (s *Store) runKey(id int64) string { return s.prefix + "run:" + strconv.FormatInt(id, 10) }

func (s *Store) batchKey(runID, seq int64) string {
	return s.runKey(runID) + ":b:" + strconv.FormatInt(seq, 10)
}

// eval runs a script with the prefix and the clock as its first arguments
// and turns its status reply into an error wrapped with op. It returns the
// status ("OK" or "MORE") and the rest of the reply.
func (s *Store) eval(ctx context.Context, sc *redis.Script, op string, args ...any) (string, []any, error) {
	return s.evalAt(ctx, s.now(), sc, op, args...)
}

// evalAt is eval with the clock read by the caller, for callers that derive
// other arguments (a lease's end) from the same instant.
func (s *Store) evalAt(ctx context.Context, now time.Time, sc *redis.Script, op string, args ...any) (string, []any, error) {
	all := make([]any, 0, len(args)+2)
	all = append(all, s.prefix, now.UnixMicro())
	all = append(all, args...)
	res, err := sc.Run(ctx, s.client, nil, all...).Slice()
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(res) == 0 {
		return "", nil, fmt.Errorf("%s: empty script reply", op)
	}
	code, _ := res[0].(string)
	rest := res[1:]
	str := func(i int) string {
		if i < len(rest) {
			if v, ok := rest[i].(string); ok {
				return v
			}
		}
		return ""
	}
	switch code {
	case "OK", "MORE":
		return code, rest, nil
	case "NOTFOUND":
		return code, nil, fmt.Errorf("%s: %s %w", op, str(0), store.ErrNotFound)
	case "TRANSITION":
		return code, nil, fmt.Errorf("%s: %w", op, &store.TransitionError{Entity: str(0), ID: str(1), From: str(2), To: str(3)})
	case "FINISHED":
		return code, nil, fmt.Errorf("%s: batch is %s: %w", op, str(0), store.ErrBatchFinished)
	case "NOTRUNNING":
		return code, nil, fmt.Errorf("%s: run is %s: %w", op, str(0), store.ErrRunNotRunning)
	case "CLAIMED":
		return code, nil, fmt.Errorf("%s: %w", op, store.ErrBatchClaimed)
	case "STALE":
		return code, nil, fmt.Errorf("%s: %w", op, store.ErrStaleClaim)
	case "CONFLICT":
		return code, nil, fmt.Errorf("%s: %s: %w", op, str(0), store.ErrConflict)
	case "FLOWBUSY":
		id, _ := strconv.ParseInt(str(1), 10, 64)
		return code, nil, fmt.Errorf("%s: %w", op, &store.FlowBusyError{Flow: str(0), RunID: id, State: store.RunState(str(2))})
	}
	return code, nil, fmt.Errorf("%s: unexpected script reply %q", op, code)
}
