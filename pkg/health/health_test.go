package health_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/health"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

// The decision from a measured value, for every kind, at and around its
// limit.
func TestDecide(t *testing.T) {
	lag := store.HealthCheck{Kind: store.HealthReplicationLag, MaxSeconds: 5}
	for _, tc := range []struct {
		check  store.HealthCheck
		value  float64
		ok     bool
		reason string
	}{
		{lag, 0, true, ""},
		{lag, 5, true, ""},
		{lag, 12.34, false, "replication lag 12.3 s > 5 s"},
		{store.HealthCheck{Kind: store.HealthReplicationLag, MaxSeconds: 0.5, Connection: "replica"}, 0.75, false, "replication lag 0.8 s > 0.5 s on replica"},
		{store.HealthCheck{Kind: store.HealthAutovacuum, Table: "public.users"}, 0, true, ""},
		{store.HealthCheck{Kind: store.HealthAutovacuum, Table: "public.users"}, 1, false, "autovacuum running on public.users"},
		{store.HealthCheck{Kind: store.HealthLockWaits}, 0, true, ""},
		{store.HealthCheck{Kind: store.HealthLockWaits}, 1, false, "lock waits 1 > 0"},
		{store.HealthCheck{Kind: store.HealthLockWaits, Max: 3}, 3, true, ""},
		{store.HealthCheck{Kind: store.HealthLockWaits, Max: 3}, 4, false, "lock waits 4 > 3"},
		{store.HealthCheck{Kind: store.HealthSQL, Query: "SELECT true"}, 1, true, ""},
		{store.HealthCheck{Kind: store.HealthSQL, Query: "SELECT true", Name: "maintenance_flag"}, 0, false, "sql check maintenance_flag returned false"},
	} {
		ok, reason := health.Decide(tc.check, tc.value)
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("%s at %v: %v %q, want %v %q", tc.check.Label(), tc.value, ok, reason, tc.ok, tc.reason)
		}
	}
}

// checker returns a Checker over db as the application database (no named
// connections).
func checker(db *gorm.DB) *health.Checker {
	return &health.Checker{Open: health.ResourcesOpener(engine.NewResources(db, nil, nil)), Timeout: 2 * time.Second}
}

func openDB(t *testing.T, url string) *gorm.DB {
	t.Helper()
	db, err := sqlstore.OpenDB(context.Background(), url, 6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db
}

// mustCheck evaluates c and fails the test on an evaluation error.
func mustCheck(t *testing.T, k *health.Checker, c store.HealthCheck) health.Result {
	t.Helper()
	res := k.Check(context.Background(), c)
	if res.Err != nil {
		t.Fatalf("%s: %v", c.Label(), res.Err)
	}
	return res
}

// The flag table the sql checks read, and the table lock waits are made
// on.
func setupTables(t *testing.T, db *gorm.DB) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE maintenance (name VARCHAR(50) PRIMARY KEY, paused BOOLEAN NOT NULL)",
		"INSERT INTO maintenance (name, paused) VALUES ('backfills', false)",
		"CREATE TABLE things (id INT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO things (id, v) VALUES (1, 0)",
	} {
		if err := db.Exec(stmt).Error; err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// sqlChecks: the query's boolean decides; what is not one boolean, and a
// query that would write, are errors (the check runs read-only).
func sqlChecks(t *testing.T, db *gorm.DB, k *health.Checker) {
	t.Helper()
	flag := store.HealthCheck{Kind: store.HealthSQL, Query: "SELECT NOT paused FROM maintenance WHERE name = 'backfills'"}
	if res := mustCheck(t, k, flag); !res.Healthy {
		t.Fatalf("flag off: %+v, want healthy", res)
	}
	if err := db.Exec("UPDATE maintenance SET paused = true").Error; err != nil {
		t.Fatal(err)
	}
	if res := mustCheck(t, k, flag); res.Healthy || res.Reason != "sql check returned false" {
		t.Fatalf("flag on: %+v, want unhealthy", res)
	}
	for _, tc := range []struct{ query, want string }{
		{"SELECT NOT paused FROM maintenance WHERE name = 'none'", "no row"},
		{"SELECT NULL", "NULL"},
		{"SELECT 'maybe'", "one boolean"},
		{"SELECT * FROM no_such_table", "no_such_table"},
	} {
		res := k.Check(context.Background(), store.HealthCheck{Kind: store.HealthSQL, Query: tc.query})
		if res.Err == nil || res.Healthy || !strings.Contains(res.Err.Error(), tc.want) || !strings.Contains(res.Reason, "check failed") {
			t.Errorf("%s: %+v, want an error saying %q", tc.query, res, tc.want)
		}
	}
	// Read-only: a query that writes fails and changes nothing.
	write := "UPDATE maintenance SET paused = false"
	if db.Dialector.Name() == "postgres" {
		write = "UPDATE maintenance SET paused = false RETURNING true"
	}
	if res := k.Check(context.Background(), store.HealthCheck{Kind: store.HealthSQL, Query: write}); res.Err == nil || res.Healthy {
		t.Errorf("a writing query: %+v, want an error", res)
	}
	var paused bool
	if err := db.Raw("SELECT paused FROM maintenance WHERE name = 'backfills'").Scan(&paused).Error; err != nil || !paused {
		t.Fatalf("the writing query changed the flag: paused %v, %v", paused, err)
	}
	// Timeouts: a query slower than the check's timeout is an error, soon.
	slow := map[string]string{"postgres": "SELECT pg_sleep(5) IS NULL", "mysql": "SELECT SLEEP(5) = 0"}[db.Dialector.Name()]
	if slow != "" {
		fast := &health.Checker{Open: k.Open, Timeout: 300 * time.Millisecond}
		start := time.Now()
		res := fast.Check(context.Background(), store.HealthCheck{Kind: store.HealthSQL, Query: slow})
		if res.Healthy || time.Since(start) > 3*time.Second {
			t.Errorf("a slow query: %+v after %s, want unhealthy within about the 300ms timeout", res, time.Since(start))
		}
	}
}

// lockWaits makes a real lock waiter with two sessions and sees the check
// go from healthy to held and back.
func lockWaits(t *testing.T, db *gorm.DB, k *health.Checker) {
	t.Helper()
	ctx := context.Background()
	waits := store.HealthCheck{Kind: store.HealthLockWaits}
	if res := mustCheck(t, k, waits); !res.Healthy {
		t.Fatalf("no waiter yet: %+v, want healthy", res)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	waiter, err := sqlDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	if _, err := holder.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "UPDATE things SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := waiter.ExecContext(ctx, "UPDATE things SET v = 2 WHERE id = 1")
		done <- err
	}()
	var res health.Result
	deadline := time.Now().Add(10 * time.Second)
	for {
		res = mustCheck(t, k, waits)
		if !res.Healthy || time.Now().After(deadline) {
			break
		}
		// InnoDB refreshes INNODB_TRX only when it was not read for
		// 100 ms: polled faster, it would never change.
		time.Sleep(250 * time.Millisecond)
	}
	if res.Healthy || res.Value < 1 || !strings.HasPrefix(res.Reason, "lock waits ") {
		t.Fatalf("a session waits for a row lock: %+v, want unhealthy", res)
	}
	if res := mustCheck(t, k, store.HealthCheck{Kind: store.HealthLockWaits, Max: 1000}); !res.Healthy {
		t.Errorf("max 1000: %+v, want healthy", res)
	}
	if _, err := holder.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiter: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if res = mustCheck(t, k, waits); res.Healthy || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !res.Healthy {
		t.Fatalf("after the lock was released: %+v, want healthy", res)
	}
}

func TestPostgres(t *testing.T) {
	db := openDB(t, testenv.PostgresURL(t))
	setupTables(t, db)
	k := checker(db)
	t.Run("sql", func(t *testing.T) { sqlChecks(t, db, k) })
	t.Run("lock_waits", func(t *testing.T) { lockWaits(t, db, k) })
	t.Run("replication_lag", func(t *testing.T) {
		// A primary without standbys lags 0 s.
		res := mustCheck(t, k, store.HealthCheck{Kind: store.HealthReplicationLag, MaxSeconds: 1})
		if !res.Healthy || res.Value != 0 {
			t.Fatalf("%+v, want healthy at 0 s", res)
		}
	})
	t.Run("autovacuum", func(t *testing.T) {
		res := mustCheck(t, k, store.HealthCheck{Kind: store.HealthAutovacuum, Table: "public.things"})
		if !res.Healthy || res.Value != 0 {
			t.Fatalf("%+v, want healthy: no autovacuum on a fresh table", res)
		}
		res = k.Check(context.Background(), store.HealthCheck{Kind: store.HealthAutovacuum, Table: "missing_table"})
		if res.Err == nil || !strings.Contains(res.Err.Error(), "missing_table does not exist") {
			t.Fatalf("a missing table: %+v, want an error naming it", res)
		}
	})
	t.Run("unknown connection", func(t *testing.T) {
		res := k.Check(context.Background(), store.HealthCheck{Kind: store.HealthLockWaits, Connection: "replica"})
		if !errors.Is(res.Err, engine.ErrUnknownConnection) || res.Healthy {
			t.Fatalf("%+v, want ErrUnknownConnection", res)
		}
	})
}

func TestMariaDB(t *testing.T) {
	db := openDB(t, testenv.MySQLURL(t))
	setupTables(t, db)
	k := checker(db)
	t.Run("sql", func(t *testing.T) { sqlChecks(t, db, k) })
	t.Run("lock_waits", func(t *testing.T) { lockWaits(t, db, k) })
	t.Run("replication_lag", func(t *testing.T) {
		// Not a replica: no channel, no lag.
		res := mustCheck(t, k, store.HealthCheck{Kind: store.HealthReplicationLag, MaxSeconds: 1})
		if !res.Healthy || res.Value != 0 {
			t.Fatalf("%+v, want healthy at 0 s", res)
		}
	})
	t.Run("autovacuum", func(t *testing.T) {
		res := k.Check(context.Background(), store.HealthCheck{Kind: store.HealthAutovacuum, Table: "things"})
		if !errors.Is(res.Err, health.ErrUnsupported) || !strings.Contains(res.Err.Error(), "autovacuum checks need PostgreSQL") {
			t.Fatalf("%+v, want ErrUnsupported saying PostgreSQL is needed", res)
		}
	})
}

func TestSQLite(t *testing.T) {
	db := openDB(t, testenv.SQLiteURL(t))
	setupTables(t, db)
	k := checker(db)
	t.Run("sql", func(t *testing.T) { sqlChecks(t, db, k) })
	t.Run("built-ins", func(t *testing.T) {
		for _, c := range []store.HealthCheck{
			{Kind: store.HealthReplicationLag, MaxSeconds: 1},
			{Kind: store.HealthAutovacuum, Table: "things"},
			{Kind: store.HealthLockWaits},
		} {
			res := k.Check(context.Background(), c)
			if !errors.Is(res.Err, health.ErrUnsupported) || !strings.Contains(res.Err.Error(), "SQLite") || res.Healthy {
				t.Errorf("%s: %+v, want ErrUnsupported naming SQLite", c.Kind, res)
			}
		}
	})
	// The connection the check made read-only is writable again for the
	// application.
	if err := db.Exec("UPDATE things SET v = 7 WHERE id = 1").Error; err != nil {
		t.Fatalf("write after checks: %v", err)
	}
}
