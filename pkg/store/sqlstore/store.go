package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/dripflow/dripflow/pkg/store"
)

var _ store.Store = (*Store)(nil)

// Default connection pool sizes of a store made by Open.
const (
	// DefaultMaxOpenConns bounds a PostgreSQL or MySQL pool: enough for
	// dozens of concurrent workers, well below the servers' default
	// max_connections.
	DefaultMaxOpenConns = 16
	// DefaultSQLiteMaxOpenConns bounds the pool of a SQLite store's readers
	// (and of DB), which WAL lets run beside the writer; the store's own
	// writes go through one more connection, reserved for them.
	DefaultSQLiteMaxOpenConns = 8
)

// Config configures a Store. The zero value is ready to use.
type Config struct {
	// Now is the store's clock; nil means time.Now. Times are stored in UTC
	// truncated to microseconds.
	Now func() time.Time
	// MaxOpenConns bounds the connection pool of a store made by Open
	// (0: DefaultMaxOpenConns, or DefaultSQLiteMaxOpenConns for SQLite,
	// whose writer has one connection more). New leaves the pool of the
	// caller's *gorm.DB as it is.
	MaxOpenConns int
}

// Store is the SQL implementation of store.Store. It is safe for concurrent
// use.
type Store struct {
	// db serves reads and is what DB returns; wdb runs the store's
	// transactions. They differ only for a SQLite store made by Open, whose
	// writer has a connection of its own so that it never queues behind
	// readers for one.
	db, wdb *gorm.DB
	// adb, on a PostgreSQL store made by Open, is a small pool whose
	// sessions commit without waiting for the disk (synchronous_commit
	// off), for the per-batch bookkeeping (see inBookkeepingTx); nil
	// otherwise, and such transactions then switch it off themselves.
	adb     *gorm.DB
	dialect dialect
	now     func() time.Time
	// owned says Close closes db and wdb (the store opened them).
	owned bool
	// writeQueue serialises the store's own SQLite write transactions
	// in-process, where SQLite's busy handler would poll, and lets work in
	// flight finish before new work starts. Nil for the other dialects.
	writeQueue *writeQueue
	// maxEvents is how many events a run keeps (store.MaxRunEvents).
	maxEvents int64
}

// Open connects to the database at databaseURL and returns a store on it,
// after checking that its schema is at SchemaVersion. It refuses a database
// that needs `dripflow migrate` (store.ErrSchemaOutdated) or was migrated by a
// newer dripflow (store.ErrSchemaTooNew).
func Open(ctx context.Context, databaseURL string, cfg Config) (*Store, error) {
	db, d, err := openURL(ctx, databaseURL, cfg.MaxOpenConns)
	if err != nil {
		return nil, err
	}
	s, err := newStore(ctx, db, d, cfg)
	if err != nil {
		closeDB(db)
		return nil, err
	}
	s.owned = true
	if d == dialectSQLite {
		w, _, err := openURL(ctx, databaseURL, 1)
		if err != nil {
			closeDB(db)
			return nil, err
		}
		s.wdb = session(w)
	}
	if d == dialectPostgres {
		// A server or pooler that refuses the session parameter (PgBouncer
		// without ignore_startup_parameters) leaves the bookkeeping on the
		// main pool, switching it off per transaction.
		if a, _, err := openURL(ctx, withRuntimeParam(databaseURL, "synchronous_commit", "off"), asyncPoolSize(cfg.MaxOpenConns)); err == nil {
			s.adb = session(a)
		}
	}
	return s, nil
}

// asyncPoolSize is the size of the bookkeeping pool for a main pool of
// maxOpen: its statements are short, and each process should not double
// its share of the server's connections.
func asyncPoolSize(maxOpen int) int {
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenConns
	}
	return max(4, maxOpen/2)
}

// withRuntimeParam adds a run-time parameter to a postgres:// URL (pgx sends
// unknown query parameters as such).
func withRuntimeParam(raw, name, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// New returns a store on a gorm connection the application already has
// (PostgreSQL, MySQL/MariaDB or glebarez/sqlite), after the same schema check
// as Open. The store does not close db. For SQLite, db should open its
// transactions IMMEDIATE (DSN parameter _txlock=immediate) and set a
// busy_timeout, as Open does.
func New(ctx context.Context, db *gorm.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *gorm.DB")
	}
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, db, d, cfg)
}

func newStore(ctx context.Context, db *gorm.DB, d dialect, cfg Config) (*Store, error) {
	if err := checkSchema(ctx, db, d); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{db: session(db), dialect: d, now: now, maxEvents: store.MaxRunEvents}
	s.wdb = s.db
	if d == dialectSQLite {
		s.writeQueue = &writeQueue{}
	}
	return s, nil
}

// session is a fresh session on db without the caller's conditions; the
// store's single statements need no implicit transaction of gorm's.
func session(db *gorm.DB) *gorm.DB {
	return db.Session(&gorm.Session{NewDB: true, SkipDefaultTransaction: true})
}

// openURL opens a gorm connection for a database URL with the store's pool
// settings and checks that the database answers.
func openURL(ctx context.Context, databaseURL string, maxOpen int) (*gorm.DB, dialect, error) {
	t, err := parseURL(databaseURL)
	if err != nil {
		return nil, "", err
	}
	db, err := gorm.Open(t.dialector, &gorm.Config{
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	})
	if err != nil {
		return nil, "", fmt.Errorf("open %s database: %w", t.dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, "", fmt.Errorf("open %s database: %w", t.dialect, err)
	}
	if maxOpen <= 0 {
		maxOpen = DefaultMaxOpenConns
		if t.dialect == dialectSQLite {
			maxOpen = DefaultSQLiteMaxOpenConns
		}
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	// The first connection switches a new SQLite file to WAL before others
	// open concurrently.
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, "", fmt.Errorf("connect to %s database: %w", t.dialect, err)
	}
	if t.dialect != dialectSQLite {
		warm(ctx, sqlDB, min(maxOpen, warmConns))
	}
	return db, t.dialect, nil
}

// warmConns is how many connections a server-backed pool opens up front: a
// run's first batch then does not wait for new connections (tens of
// milliseconds each on a busy server) for its count, its planning step and
// its claim.
const warmConns = 4

// warm opens n connections of pool side by side and returns them to it
// idle; failures are left for first use to report.
func warm(ctx context.Context, pool *sql.DB, n int) {
	conns := make([]*sql.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], _ = pool.Conn(ctx)
		}()
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// DB returns the store's gorm connection: the handle for the application's
// own queries on the store's database and for the transactions that
// CompleteBatchTx joins. On SQLite its transactions begin IMMEDIATE, so one
// holds the database's write lock until it ends and the store's writes wait
// for it (up to the busy timeout, 10s, then retried): keep such transactions
// short.
func (s *Store) DB() *gorm.DB { return s.db }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("ping %s store: %w", s.dialect, err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s store: %w", s.dialect, err)
	}
	return nil
}

// Close closes the store's connections if Open made them; a store made by
// New leaves the caller's *gorm.DB open.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	var errs []error
	dbs := []*gorm.DB{s.db}
	if s.wdb != s.db {
		dbs = append(dbs, s.wdb)
	}
	if s.adb != nil {
		dbs = append(dbs, s.adb)
	}
	for _, db := range dbs {
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close %s store: %w", s.dialect, err)
	}
	return nil
}

// clock returns the store's current time as stored: UTC, microseconds.
func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
