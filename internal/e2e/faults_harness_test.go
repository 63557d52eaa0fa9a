package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/store"
)

// The fault tests restart PostgreSQL and Redis. They do it to servers of
// their own, started here on free ports from the installed binaries, so
// that the other packages' tests, which `go test ./...` runs at the same
// time against the shared services, never see the restart.

// needBinary skips the test when a server binary is missing (fails it in
// CI, where a missing binary must not turn the run green).
func needBinary(t *testing.T, what string, err error) {
	t.Helper()
	if testenv.InCI() {
		t.Fatalf("%s is required in CI (CI=true) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable: %v", what, err)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pgBinDir finds PostgreSQL's server binaries: DRIPFLOW_TEST_PG_BINDIR,
// `pg_config --bindir`, Debian's /usr/lib/postgresql/<version>/bin (the
// newest), or initdb on PATH.
func pgBinDir() (string, error) {
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "initdb"))
		return err == nil
	}
	if d := os.Getenv("DRIPFLOW_TEST_PG_BINDIR"); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("DRIPFLOW_TEST_PG_BINDIR=%s has no initdb", d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb found (install postgresql, or set DRIPFLOW_TEST_PG_BINDIR)")
}

// pgServer is a PostgreSQL server of the test's own, in a temporary
// directory, on a free port; it is stopped and removed when the test ends.
type pgServer struct {
	t    *testing.T
	bin  string
	base string // owned by the server's user: data/, the log, the socket
	port int
	cred *syscall.Credential // PostgreSQL refuses to run as root
	cmd  *exec.Cmd           // the postmaster
	done chan struct{}       // closed when it exits
}

func privatePostgres(t *testing.T) *pgServer {
	t.Helper()
	bin, err := pgBinDir()
	if err != nil {
		needBinary(t, "PostgreSQL's server binaries", err)
	}
	s := &pgServer{t: t, bin: bin, port: freePort(t)}
	s.base, err = os.MkdirTemp("", "dripflow-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(s.base) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			needBinary(t, "a postgres user to run PostgreSQL as (it refuses root)", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := s.command("initdb", "-D", s.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	t.Cleanup(s.stop)
	s.start()
	return s
}

func (s *pgServer) data() string { return filepath.Join(s.base, "data") }

func (s *pgServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// URL is the server's postgres database.
func (s *pgServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// start starts the server (a child of the test, which PostgreSQL's
// immediate shutdown ends should the test binary die) and waits until it
// accepts connections.
func (s *pgServer) start() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.base, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.port), "-k", s.base,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start PostgreSQL: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	db, err := sql.Open("pgx", s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Listening is not ready: it answers "starting up" until crash
		// recovery is over.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.base, "server.log"))
			s.t.Fatalf("PostgreSQL on port %d exited at start:\n%s", s.port, log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("PostgreSQL on port %d did not accept connections within 60s: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server as a crash would (SIGQUIT, PostgreSQL's immediate
// shutdown): every connection cut, no checkpoint, crash recovery at the
// next start.
func (s *pgServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// crashRestart stops the server as a crash would and starts it again
// after down.
func (s *pgServer) crashRestart(down time.Duration) {
	s.t.Helper()
	s.stop()
	time.Sleep(down)
	s.start()
}

// redisServer is a Redis of the test's own on a free port, without
// persistence: restarted, it is empty.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func privateRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		needBinary(t, "redis-server", err)
	}
	s := &redisServer{t: t, bin: bin, port: freePort(t)}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// URL is the server's database 0.
func (s *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.t.TempDir(), "--loglevel", "warning")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	cmd := s.cmd
	go func() { cmd.Wait(); close(done) }()
	s.done = done
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port)})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer within 20s", s.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the server at once (SIGKILL): everything it held is lost.
func (s *redisServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

// restartEmpty kills the server and starts an empty one on the same port.
func (s *redisServer) restartEmpty(down time.Duration) {
	s.t.Helper()
	s.kill()
	time.Sleep(down)
	s.start()
}

// runNow is c.run that tolerates the database being away (restarting):
// it tries for up to a second and reports the error instead of failing.
func (c *cluster) runNow(id int64) (store.Run, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.st.GetRun(ctx, id)
}

// waitDoneThroughFaults is waitDone for a database that may restart while
// it waits: errors are retried until the timeout.
func (c *cluster) waitDoneThroughFaults(id int64, timeout time.Duration) store.Run {
	c.t.Helper()
	var r store.Run
	var last error
	deadline := time.Now().Add(timeout)
	for {
		got, err := c.runNow(id)
		if err == nil && got.State.Terminal() {
			r = got
			break
		}
		last = err
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for run %d to end (state %s, counters %+v, last error %v)", timeout, id, got.State, got.Counters, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Connections the restart cut are dropped from the pools as they fail:
	// read until reads succeed, so the checks after this see the data.
	for i := 0; i < 50; i++ {
		_, err1 := c.runNow(id)
		_, err2 := c.st.ListBatches(context.Background(), id, store.BatchFilter{Limit: 1})
		err3 := c.db.Exec("SELECT 1").Error
		if err1 == nil && err2 == nil && err3 == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

// batchesOf returns the run's batches by seq.
func (c *cluster) batchesOf(runID int64) map[int64]store.Batch {
	c.t.Helper()
	out := map[int64]store.Batch{}
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := c.st.ListBatches(context.Background(), runID, f)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, b := range page.Items {
			out[b.Seq] = b
		}
		if page.NextCursor == "" {
			return out
		}
		f.Cursor = page.NextCursor
	}
}

// heldBy returns the seqs of the run's running batches whose worker is p.
func (c *cluster) heldBy(runID int64, p *proc) []int64 {
	c.t.Helper()
	suffix := ":" + strconv.Itoa(p.cmd.Process.Pid)
	var seqs []int64
	for seq, b := range c.batchesOf(runID) {
		if b.State == store.BatchRunning && strings.HasSuffix(b.Worker, suffix) {
			seqs = append(seqs, seq)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs
}

// leader returns the scheduler among ps that holds the leader lease.
func (c *cluster) leader(ps ...*proc) *proc {
	c.t.Helper()
	var found *proc
	c.waitFor("a leading scheduler", 30*time.Second, func() bool {
		token, err := c.rdb.Get(context.Background(), "dripflow:scheduler:leader").Result()
		if err != nil {
			return false
		}
		// The token is the scheduler's id (host:pid), ":", a nonce.
		for _, p := range ps {
			if strings.Contains(token, ":"+strconv.Itoa(p.cmd.Process.Pid)+":") {
				found = p
				return true
			}
		}
		return false
	})
	return found
}
