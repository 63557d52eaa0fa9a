package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/internal/e2e/e2edefs"
	"github.com/dripflow/dripflow/internal/redisurl"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/events"
	"github.com/dripflow/dripflow/pkg/store"
	"github.com/dripflow/dripflow/pkg/store/sqlstore"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// procBinary builds internal/e2e/e2eproc once per test binary.
func procBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dripflow-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "e2eproc")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/dripflow/dripflow/internal/e2e/e2eproc").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build e2eproc: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cluster is a dripflow installation run as real processes: a PostgreSQL
// database holding the SQL store and the app tables, and a Redis database.
type cluster struct {
	t        *testing.T
	bin      string
	redisURL string
	dbURL    string
	db       *gorm.DB
	st       *sqlstore.Store
	rdb      redis.UniversalClient
	ctl      *control.Controller
	logDir   string
	// env is added to every process's environment.
	env []string

	mu    sync.Mutex
	procs []*proc
	n     int
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterAt(t, testenv.PostgresURL(t), testenv.RedisDB(t))
}

// newClusterAt is newCluster on the given database and Redis (such as a
// test's own servers) instead of throwaway ones on the shared services.
func newClusterAt(t *testing.T, dbURL, redisURL string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: procBinary(t), redisURL: redisURL, dbURL: dbURL, logDir: t.TempDir()}
	ctx := context.Background()
	if err := sqlstore.MigrateURL(ctx, c.dbURL); err != nil {
		t.Fatalf("migrate store: %v", err)
	}
	st, err := sqlstore.Open(ctx, c.dbURL, sqlstore.Config{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c.st, c.db = st, st.DB()
	if err := e2edefs.Migrate(ctx, c.db); err != nil {
		t.Fatalf("migrate test tables: %v", err)
	}
	opts, err := redisurl.Parse(c.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c.rdb = opts.NewClient()
	t.Cleanup(func() { c.rdb.Close() })
	c.ctl = &control.Controller{Store: st, Events: events.New(c.rdb, "")}
	t.Cleanup(c.stopAll)
	return c
}

// proc is one running dripflow process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (c *cluster) start(mode string, args ...string) *proc {
	c.t.Helper()
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("%s-%d", mode, c.n)
	c.mu.Unlock()
	logPath := filepath.Join(c.logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, append([]string{mode}, args...)...)
	cmd.Env = append(os.Environ(),
		"DRIPFLOW_REDIS_URL="+c.redisURL,
		"DRIPFLOW_DATABASE_URL="+c.dbURL,
		"DRIPFLOW_STORE=sql",
		"DRIPFLOW_LOG_FORMAT=console",
		"DRIPFLOW_LOG_LEVEL=info",
		"DRIPFLOW_CLAIM_LEASE=5s",
		"DRIPFLOW_SHUTDOWN_TIMEOUT=10s",
		"DRIPFLOW_METRICS_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdout, cmd.Stderr = f, f
	// A test binary that dies (a timeout) takes its processes with it, so
	// they cannot hold a leader lease or claims into the next run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

func (c *cluster) scheduler() *proc {
	return c.start("scheduler", "--reconcile-interval=1s", "--reconcile-grace=4s", "--leader-ttl=3s", "--poll-interval=500ms")
}

func (c *cluster) worker(concurrency int) *proc {
	return c.start("worker", fmt.Sprintf("--concurrency=%d", concurrency))
}

// kill sends SIGKILL and waits for the process to die.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if c.t.Failed() || os.Getenv("E2E_LOGS") != "" {
		for _, p := range procs {
			c.t.Logf("---- last lines of %s ----\n%s", p.name, tail(p.log, 40))
		}
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// seedItems inserts n items with ids 1..n.
func (c *cluster) seedItems(n int) {
	c.t.Helper()
	err := c.db.Exec(`INSERT INTO e2e_items (id, counter, poison, val, updated_at)
		SELECT g, 0, false, 'v' || g, now() - interval '1 hour' FROM generate_series(1, ?) AS g`, n).Error
	if err != nil {
		c.t.Fatalf("seed %d items: %v", n, err)
	}
}

// createRun starts e2e_bump (or another definition) through the control API.
func (c *cluster) createRun(n control.NewRun) store.Run {
	c.t.Helper()
	if n.Definition == "" {
		n.Definition = "e2e_bump"
	}
	if n.CreatedBy == "" {
		n.CreatedBy = "e2e"
	}
	r, err := c.ctl.CreateRun(context.Background(), n)
	if err != nil {
		c.t.Fatalf("create run: %v", err)
	}
	return r
}

// waitFor polls cond until it holds.
func (c *cluster) waitFor(what string, timeout time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) run(id int64) store.Run {
	c.t.Helper()
	r, err := c.st.GetRun(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// waitDone waits for the run to end and returns it.
func (c *cluster) waitDone(id int64, timeout time.Duration) store.Run {
	c.t.Helper()
	var r store.Run
	c.waitFor(fmt.Sprintf("run %d to end", id), timeout, func() bool {
		r = c.run(id)
		return r.State.Terminal()
	})
	return r
}

// assertExactlyOnce checks every item was processed exactly once, and that
// the run's counters and checkpoints say the same.
func (c *cluster) assertExactlyOnce(r store.Run, items int, batchSize int) {
	c.t.Helper()
	var wrong int64
	if err := c.db.Model(&e2edefs.Item{}).Where("counter <> 1").Count(&wrong).Error; err != nil {
		c.t.Fatal(err)
	}
	if wrong != 0 {
		var twice int64
		c.db.Model(&e2edefs.Item{}).Where("counter > 1").Count(&twice)
		c.t.Errorf("%d items not processed exactly once (%d more than once)", wrong, twice)
	}
	batches := int64((items + batchSize - 1) / batchSize)
	if r.State != store.RunSucceeded || r.BatchesSucceeded != batches || r.BatchesTotal() != batches ||
		r.RowsRead != int64(items) || r.RowsWritten != int64(items) {
		c.t.Errorf("run %d: state %s, counters %+v; want succeeded with %d batches and %d rows", r.ID, r.State, r.Counters, batches, items)
	}
	var sumRows, seen int64
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := c.st.ListBatches(context.Background(), r.ID, f)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, b := range page.Items {
			seen++
			if b.State != store.BatchSucceeded {
				c.t.Errorf("batch %s is %s", b.ID(), b.State)
			}
			sumRows += b.RowsWritten
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	if seen != batches || sumRows != int64(items) {
		c.t.Errorf("checkpoints: %d batches with %d rows, want %d and %d", seen, sumRows, batches, items)
	}
}

func ptr[T any](v T) *T { return &v }

// holdsBatch reports whether process p holds a running batch of the run
// (worker ids are host:pid), so a kill of p hits something in flight.
func (c *cluster) holdsBatch(runID int64, p *proc) bool {
	c.t.Helper()
	page, err := c.st.ListBatches(context.Background(), runID, store.BatchFilter{States: []store.BatchState{store.BatchRunning}, Limit: store.MaxLimit})
	if err != nil {
		c.t.Fatal(err)
	}
	suffix := ":" + strconv.Itoa(p.cmd.Process.Pid)
	for _, b := range page.Items {
		if strings.HasSuffix(b.Worker, suffix) {
			return true
		}
	}
	return false
}

// batchesWithAttempts counts the run's batches claimed at least n times.
func (c *cluster) batchesWithAttempts(runID int64, n int) int {
	c.t.Helper()
	count := 0
	f := store.BatchFilter{Limit: store.MaxLimit}
	for {
		page, err := c.st.ListBatches(context.Background(), runID, f)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, b := range page.Items {
			if b.Attempts >= n {
				count++
			}
		}
		if page.NextCursor == "" {
			return count
		}
		f.Cursor = page.NextCursor
	}
}

// logged reports whether any process of the mode logged text.
func (c *cluster) logged(mode, text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if !strings.HasPrefix(p.name, mode) {
			continue
		}
		b, err := os.ReadFile(p.log)
		if err == nil && strings.Contains(string(b), text) {
			return true
		}
	}
	return false
}

// metrics scrapes a process's /metrics (its address is in its log) into
// "name{labels}" → value.
func (c *cluster) metrics(p *proc) map[string]float64 {
	c.t.Helper()
	var addr string
	c.waitFor(p.name+"'s ops address", 10*time.Second, func() bool {
		b, _ := os.ReadFile(p.log)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "ops") && strings.Contains(line, "listening") {
				if i := strings.Index(line, `"addr": "`); i >= 0 {
					rest := line[i+len(`"addr": "`):]
					addr = rest[:strings.Index(rest, `"`)]
					return true
				}
			}
		}
		return false
	})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		c.t.Fatalf("scrape %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndex(line, " ")
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
