package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisdb"
)

// services hands out throwaway PostgreSQL databases and Redis databases and
// removes every one of them on cleanup, also after an error or an interrupt.
type services struct {
	pgBase    string // URL of an existing database to connect to for admin work
	redisBase string

	mu       sync.Mutex
	cleanups []func(context.Context) error
}

func newServices(pgURL, redisURL string) *services {
	return &services{pgBase: pgURL, redisBase: redisURL}
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

func (s *services) onCleanup(f func(context.Context) error) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

// cleanup undoes everything, newest first. It ignores ctx's cancellation so
// that an interrupted run still drops its databases.
func (s *services) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	s.mu.Lock()
	fs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	var errs []error
	for i := len(fs) - 1; i >= 0; i-- {
		errs = append(errs, fs[i](ctx))
	}
	return errors.Join(errs...)
}

// admin runs one statement on the base database.
func (s *services) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.pgBase)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// pgURL returns the URL of database name on the base server.
func (s *services) pgURL(name string) (string, error) {
	u, err := url.Parse(s.pgBase)
	if err != nil {
		return "", fmt.Errorf("parse PostgreSQL URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// createDB creates an empty database (or a copy of template) and returns its
// name and URL; it is dropped on cleanup, or earlier by dropDB. A large
// template is copied file by file.
func (s *services) createDB(ctx context.Context, template string, large bool) (name, dbURL string, err error) {
	name = randomName("dripflow_bench_")
	stmt := "CREATE DATABASE " + name
	if template != "" && !large {
		err = s.admin(ctx, stmt+" TEMPLATE "+template)
	} else if template != "" {
		// FILE_COPY (PostgreSQL 15) copies the files after a checkpoint:
		// much faster than WAL-logging a large template page by page.
		err = s.admin(ctx, stmt+" TEMPLATE "+template+" STRATEGY FILE_COPY")
		if err != nil && strings.Contains(err.Error(), "STRATEGY") {
			err = s.admin(ctx, stmt+" TEMPLATE "+template)
		}
	} else {
		err = s.admin(ctx, stmt)
	}
	if err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	s.onCleanup(func(ctx context.Context) error { return s.dropDB(ctx, name) })
	dbURL, err = s.pgURL(name)
	return name, dbURL, err
}

func (s *services) dropDB(ctx context.Context, name string) error {
	if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// checkpoint flushes PostgreSQL's dirty buffers, so that a measurement does
// not pay for the writes of the one before it. It needs a superuser; without
// one it does nothing.
func (s *services) checkpoint(ctx context.Context) {
	_ = s.admin(ctx, "CHECKPOINT")
}

// redisDB reserves one of Redis's numbered databases (1–15) the way the
// tests do (internal/redisdb), so a benchmark never shares one with a test
// running beside it, and returns its URL and a client on it. The database
// is emptied now and by release, which also closes the client and gives the
// database back; release is idempotent and runs on cleanup at the latest.
func (s *services) redisDB(ctx context.Context) (dbURL string, client *redis.Client, release func(), err error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := redisdb.Reserve(rctx, s.redisBase, time.Hour)
	if err != nil {
		return "", nil, nil, err
	}
	s.onCleanup(func(context.Context) error { return r.Release() })
	return r.URL, r.Client, func() { r.Release() }, nil
}
