// Package redisdb reserves one of a Redis server's numbered databases (1–15)
// for a test or a benchmark, so processes that use dripflow's default key
// names never share a database with another test package or a benchmark
// running beside them. A reservation is a key in database 0 holding
// "<pid>:<random>"; one whose holder process died (a test binary killed by
// a timeout) is taken over, so reservations never leak until their TTL.
package redisdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reservation is a reserved, emptied database.
type Reservation struct {
	// URL is the base URL with the database's number as its path.
	URL string
	// DB is the database's number (1–15).
	DB int
	// Client is connected to the database; Release closes it.
	Client *redis.Client

	admin *redis.Client
	key   string
	token string

	once sync.Once
	err  error
}

// Reserve reserves a free database on the server at baseURL for ttl,
// empties it, and returns it. While all fifteen are taken it retries every
// 200ms until ctx ends.
func Reserve(ctx context.Context, baseURL string, ttl time.Duration) (*Reservation, error) {
	opts, err := redis.ParseURL(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	opts.DB = 0
	admin := redis.NewClient(opts)
	token := fmt.Sprintf("%d:%s", os.Getpid(), randomHex())
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("dripflow:test:redisdb:%d", db)
			ok, err := admin.SetNX(ctx, key, token, ttl).Result()
			if err != nil {
				admin.Close()
				return nil, fmt.Errorf("reserve a Redis database: %w", err)
			}
			if !ok {
				ok = reclaimStale(ctx, admin, key, token, ttl)
			}
			if !ok {
				continue
			}
			dbOpts := *opts
			dbOpts.DB = db
			r := &Reservation{DB: db, Client: redis.NewClient(&dbOpts), admin: admin, key: key, token: token}
			if err := r.Client.FlushDB(ctx).Err(); err != nil {
				r.Release()
				return nil, fmt.Errorf("empty Redis database %d: %w", db, err)
			}
			u.Path = fmt.Sprintf("/%d", db)
			r.URL = u.String()
			return r, nil
		}
		select {
		case <-ctx.Done():
			admin.Close()
			return nil, fmt.Errorf("no free Redis database (1–15): %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Release empties the database, closes the client and gives the database
// back. It is idempotent and returns the first call's error.
func (r *Reservation) Release() error {
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r.err = r.Client.FlushDB(ctx).Err()
		r.Client.Close()
		if v, _ := r.admin.Get(ctx, r.key).Result(); v == r.token {
			r.admin.Del(ctx, r.key)
		}
		r.admin.Close()
	})
	return r.err
}

func randomHex() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

var takeOverScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
end
return false`)

// reclaimStale takes over a reservation whose holder was a process on this
// machine that no longer exists.
func reclaimStale(ctx context.Context, admin *redis.Client, key, token string, ttl time.Duration) bool {
	held, err := admin.Get(ctx, key).Result()
	if err != nil {
		return false
	}
	pidText, _, ok := strings.Cut(held, ":")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || processAlive(pid) {
		return false
	}
	res, err := takeOverScript.Run(ctx, admin, []string{key}, held, token, ttl.Milliseconds()).Result()
	return err == nil && res != nil
}

// processAlive reports whether a process with the pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
