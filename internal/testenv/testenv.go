// Package testenv gives tests isolated, real services: a throwaway PostgreSQL
// or MariaDB database, a SQLite file, or a Redis key prefix, each removed when
// the test ends.
//
// Service addresses come from the environment that scripts/test-services.sh
// exports (DRIPFLOW_TEST_POSTGRES_URL, DRIPFLOW_TEST_MYSQL_URL,
// DRIPFLOW_TEST_REDIS_URL, DRIPFLOW_TEST_NATS_URL, DRIPFLOW_TEST_AMQP_URL)
// and default to the local services. A test whose service is unreachable
// is skipped — unless CI=true, where it fails, so a missing service can
// never turn a CI run green.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisdb"
)

// Default service URLs, matching the local services of a development machine.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLURL    = "mysql://root@127.0.0.1:3306/test"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// InCI reports whether the tests run in CI (CI=true), where missing services
// fail tests instead of skipping them.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable skips the test, or fails it in CI.
func unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI (CI=true) but unavailable: %v", service, err)
	}
	t.Skipf("%s unavailable (run `make services` or set its URL): %v", service, err)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Name returns a short random name with prefix, usable as a database name
// or key prefix.
func Name(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// PostgresURL creates a throwaway PostgreSQL database and returns its URL
// (postgres://…). The database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := env("DRIPFLOW_TEST_POSTGRES_URL", DefaultPostgresURL)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		unavailable(t, "PostgreSQL", err)
	}
	name := Name("dripflow_t_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create PostgreSQL database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop PostgreSQL database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse DRIPFLOW_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// MySQLURL creates a throwaway MySQL/MariaDB database and returns its URL
// (mysql://user[:password]@host:port/name). The database is dropped when the
// test ends.
func MySQLURL(t testing.TB) string {
	t.Helper()
	base := env("DRIPFLOW_TEST_MYSQL_URL", DefaultMySQLURL)
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("DRIPFLOW_TEST_MYSQL_URL must look like mysql://user:pass@host:port/db, got %q", base)
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		unavailable(t, "MariaDB/MySQL", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		unavailable(t, "MariaDB/MySQL", err)
	}
	name := Name("dripflow_t_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("create MySQL database %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop MySQL database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// SQLiteURL returns the URL (sqlite://…) of a fresh SQLite file in the
// test's temporary directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "dripflow.db")
}

// Redis returns a client for the test Redis and a key prefix unique to the
// test; every key under the prefix is deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rawURL := RedisURL(t)
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("parse DRIPFLOW_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	prefix := Name("dft:") + ":"
	t.Cleanup(func() {
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := DeletePrefix(ctx, client, prefix); err != nil {
			t.Errorf("clean Redis prefix %s: %v", prefix, err)
		}
	})
	return client, prefix
}

// RedisURL returns the URL of the test Redis after checking it answers.
func RedisURL(t testing.TB) string {
	t.Helper()
	rawURL := env("DRIPFLOW_TEST_REDIS_URL", DefaultRedisURL)
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("parse DRIPFLOW_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		unavailable(t, "Redis", err)
	}
	return rawURL
}

// DeletePrefix deletes every key that starts with prefix.
func DeletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := c.Unlink(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) >= 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan %s*: %w", prefix, err)
	}
	return flush()
}

// RedisDB reserves one of Redis's numbered databases (1–15) for the test,
// empties it, and returns its URL; it is emptied and released when the test
// ends. Tests that run processes with dripflow's default key names use it
// instead of a key prefix. A reservation is a key in database 0 (see
// internal/redisdb, which the benchmarks use too), so parallel test packages
// never share a database.
func RedisDB(t testing.TB) string {
	t.Helper()
	base := RedisURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := redisdb.Reserve(ctx, base, 30*time.Minute)
	if err != nil {
		t.Fatalf("reserve a Redis database: %v", err)
	}
	t.Cleanup(func() { r.Release() })
	return r.URL
}
