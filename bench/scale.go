package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/events"
)

// ScaleResult is section 7: one scheduler and 1, 2, 4 and 8 worker
// processes running no-op batches and the in-place backfill, with each
// store, and what each point spent its time on.
type ScaleResult struct {
	Procs       []int `json:"procs"`
	Concurrency []int `json:"concurrency"`
	NoopBatches int   `json:"noop_batches"`
	Rows        int   `json:"rows"`
	BatchSize   int   `json:"batch_size"`
	CPUs        int   `json:"cpus"`
	// PrivateRedis is true when the section ran on a redis-server of its
	// own (started by the benchmark, no persistence, like the shared one),
	// so that the Redis figures count this benchmark's commands only.
	PrivateRedis bool `json:"private_redis"`
	// PGStatStatements says whether pg_stat_statements was loaded; without
	// it PostgreSQL's cost is counted in transactions, not statements.
	PGStatStatements bool         `json:"pg_stat_statements"`
	Points           []ScalePoint `json:"points"`
}

// ScalePoint is one run: a kind of work on a store with Workers worker
// processes of Concurrency slots each.
type ScalePoint struct {
	Work        string `json:"work"`  // workNoop or workInPlace
	Store       string `json:"store"` // storeRedis or storeSQL
	Workers     int    `json:"workers"`
	Concurrency int    `json:"concurrency"` // per worker process
	MaxInFlight int    `json:"max_in_flight"`
	// DBMaxConns is each worker's DRIPFLOW_DB_MAX_CONNS (see workerDBConns).
	DBMaxConns int `json:"db_max_conns"`

	Batches       int64   `json:"batches"`
	Rows          int64   `json:"rows"`
	Wall          Seconds `json:"wall_s"`
	BatchesPerSec float64 `json:"batches_per_s"`
	RowsPerSec    float64 `json:"rows_per_s"`
	// Speedup is BatchesPerSec divided by that of the same series' first
	// point (its fewest processes).
	Speedup float64 `json:"speedup"`

	Usage Usage `json:"usage"`
	// CPUPerBatch is each class's CPU time per batch, in milliseconds.
	CPUPerBatch map[string]float64 `json:"cpu_ms_per_batch"`
	Redis       RedisUsage         `json:"redis"`
	Postgres    PGUsage            `json:"postgres"`
	Pipeline    *Pipeline          `json:"pipeline,omitempty"`
	// Verdict says in one line what bounded the point, from the figures
	// above (see verdict).
	Verdict string `json:"verdict"`
}

// Usage is the CPU time each process class spent during a point, from
// /proc.
type Usage struct {
	// Interval is from just before the run was created to just after it
	// was seen ended.
	Interval Seconds `json:"interval_s"`
	// MachineBusy is the fraction of all CPUs' time that was not idle
	// (/proc/stat), whoever used it.
	MachineBusy float64 `json:"machine_busy"`
	// CPU is CPU seconds (user + system) per class (cpuClasses); "other"
	// is the machine's busy time that none of the others account for:
	// other work on the machine.
	CPU map[string]float64 `json:"cpu_s"`
}

// cores is the class's mean number of busy CPUs during the interval.
func (u Usage) cores(class string) float64 {
	if u.Interval <= 0 {
		return 0
	}
	return u.CPU[class] / u.Interval.Seconds()
}

// RedisUsage is what a point asked of Redis (INFO commandstats). Redis
// counts the commands a Lua script calls as commands too (and their time
// inside the script's), so Commands is every command Redis executed, and
// Scripts the EVAL/EVALSHA/FCALL among them: a batch's round trips are
// Scripts plus the commands sent on their own, at most Commands.
type RedisUsage struct {
	Commands        int64   `json:"commands"`
	PerBatch        float64 `json:"commands_per_batch"`
	Scripts         int64   `json:"scripts"`
	ScriptsPerBatch float64 `json:"scripts_per_batch"`
	// Top are the commands called most, most first.
	Top []CommandCost `json:"top"`
}

// CommandCost is one Redis command's share of a point.
type CommandCost struct {
	Name     string  `json:"name"`
	Calls    int64   `json:"calls"`
	PerBatch float64 `json:"per_batch"`
}

// PGUsage is what a point asked of PostgreSQL: the benchmark database's
// pg_stat_database counters (the store's statements and, for the in-place
// backfill, the data's), and pg_stat_wal's, which are the server's (other
// databases' work included).
type PGUsage struct {
	Xacts           int64   `json:"xacts"`
	XactsPerBatch   float64 `json:"xacts_per_batch"`
	RowsWritten     int64   `json:"rows_written"` // tup_inserted + tup_updated + tup_deleted
	WrittenPerBatch float64 `json:"rows_written_per_batch"`
	// ActiveMsPerBatch is the time backends spent executing statements in
	// the database (active_time), per batch.
	ActiveMsPerBatch float64 `json:"active_ms_per_batch"`
	// WALSyncsPerBatch and WALBytesPerBatch are the server's WAL fsyncs
	// and bytes per batch.
	WALSyncsPerBatch float64 `json:"wal_syncs_per_batch"`
	WALBytesPerBatch float64 `json:"wal_bytes_per_batch"`
}

// Kinds of work and stores of the scaling section, and its variant names
// (--variants): "scale-<work>-<store>".
const (
	workNoop    = "noop"
	workInPlace = "inplace"
	storeRedis  = "redis"
	storeSQL    = "sql"
)

// Process classes whose CPU time a point measures.
const (
	classWorkers   = "workers"
	classScheduler = "scheduler"
	classPostgres  = "postgres"
	classRedis     = "redis"
	classBench     = "bench" // this process: creating the run, polling it
	classOther     = "other"
)

var cpuClasses = []string{classWorkers, classScheduler, classPostgres, classRedis, classBench, classOther}

// clkTck is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go runs on (the kernel exports no other to user space).
const clkTck = 100

// scaleConnBudget bounds the worker processes' PostgreSQL connections of
// one point, all processes together: the server is shared (the tests of
// others run on it) and its default max_connections is 100.
const scaleConnBudget = 48

// workerDBConns is each worker process's DRIPFLOW_DB_MAX_CONNS at n
// processes of conc slots: a connection per slot and two more, but within
// scaleConnBudget for all n together, counting the bookkeeping pool of at
// least 4 connections a SQL-store process opens beside it.
func workerDBConns(n, conc int, sqlStore bool) int {
	per := scaleConnBudget / n
	if sqlStore {
		per -= 4
	}
	return max(2, min(conc+2, per))
}

// pointConns is the most connections a point's processes may open: n
// workers of pools of maxConns (and the SQL store's bookkeeping pool of
// half as many, at least 4), and the scheduler's (maxConns 4).
func pointConns(n, maxConns int, sqlStore bool) int {
	if sqlStore {
		return n*(maxConns+max(4, maxConns/2)) + 8
	}
	return n*maxConns + 4
}

func (r *runner) scale(ctx context.Context) (*ScaleResult, error) {
	cfg := r.cfg
	res := &ScaleResult{Procs: cfg.ScaleProcs, Concurrency: cfg.ScaleConcurrency, NoopBatches: cfg.ScaleNoopBatches,
		Rows: cfg.ScaleRows, BatchSize: cfg.BatchSize, CPUs: runtime.NumCPU()}
	r.logf("section 7: scaling with %s worker processes of concurrency %s: %d no-op batches, in-place backfill of %d rows",
		joinInts(cfg.ScaleProcs), joinInts(cfg.ScaleConcurrency), cfg.ScaleNoopBatches, cfg.ScaleRows)

	// The section's Redis is a server of its own when redis-server is
	// installed, so that its commands and CPU time are this benchmark's
	// alone; PostgreSQL is the shared server (its figures are the run's
	// database's, but for the WAL's).
	sr := *r
	redisURL, redisPID := cfg.RedisURL, 0
	if rs, err := startRedisServer(ctx); err != nil {
		r.logf("  no Redis server of its own (%v): using %s; its commands and CPU include other clients'", err, cfg.RedisURL)
	} else {
		defer rs.stop()
		sr.svc = newServices(cfg.PostgresURL, rs.url)
		defer func() {
			if err := sr.svc.cleanup(ctx); err != nil {
				r.logf("warning: %v", err)
			}
		}()
		redisURL, redisPID, res.PrivateRedis = rs.url, rs.pid(), true
		r.logf("  Redis: a redis-server of its own at %s (pid %d, no persistence)", rs.url, redisPID)
	}
	mon, err := newScaleMonitor(ctx, cfg.PostgresURL, redisURL, redisPID)
	if err != nil {
		return nil, err
	}
	defer mon.close()
	res.PGStatStatements = mon.pgStatStatements

	type series struct {
		work, store string
		conc        int
	}
	var all []series
	for i, conc := range cfg.ScaleConcurrency {
		works := []string{workNoop}
		if i == 0 {
			works = []string{workInPlace, workNoop}
		}
		for _, w := range works {
			for _, st := range []string{storeRedis, storeSQL} {
				if cfg.variant("scale-" + w + "-" + st) {
					all = append(all, series{w, st, conc})
				}
			}
		}
	}
	var tpl string
	for _, s := range all {
		if s.work == workInPlace && tpl == "" {
			if tpl, err = sr.template(ctx, cfg.ScaleRows); err != nil {
				return nil, err
			}
		}
		var first float64
		for _, n := range cfg.ScaleProcs {
			p, err := sr.scalePoint(ctx, mon, s.work, s.store, n, s.conc, tpl)
			if err != nil {
				return nil, fmt.Errorf("%s, %s store, %d×%d: %w", s.work, s.store, n, s.conc, err)
			}
			if first == 0 {
				first = p.BatchesPerSec
			}
			if first > 0 {
				p.Speedup = p.BatchesPerSec / first
			}
			r.logf("  %-7s %-5s %d×%d  %6d batches %7.2fs %8.0f batches/s %9.0f rows/s  %.2f×  %s",
				s.work, s.store, n, s.conc, p.Batches, p.Wall.Seconds(), p.BatchesPerSec, p.RowsPerSec, p.Speedup, p.Verdict)
			res.Points = append(res.Points, p)
		}
	}
	return res, nil
}

// scalePoint runs one point: a scheduler and n workers of conc slots as
// processes on a fresh store, one run of the work, measured.
func (r *runner) scalePoint(ctx context.Context, mon *scaleMonitor, work, storeKind string, n, conc int, tpl string) (ScalePoint, error) {
	p := ScalePoint{Work: work, Store: storeKind, Workers: n, Concurrency: conc, DBMaxConns: workerDBConns(n, conc, storeKind == storeSQL)}
	slots := n * conc
	nr := control.NewRun{Definition: defNoop, CreatedBy: "bench"}
	want, rows := int64(r.cfg.ScaleNoopBatches), int64(r.cfg.ScaleNoopBatches)
	// The window is wide enough that it does not bound the point: the
	// no-op section's 8 per slot, and the in-place section's 2.
	if work == workNoop {
		p.MaxInFlight = min(8*slots, 10_000)
		nr.Params = []byte(fmt.Sprintf(`{"batches": %d}`, r.cfg.ScaleNoopBatches))
	} else {
		p.MaxInFlight = max(4, 2*slots)
		nr.Definition, nr.BatchSize = defBump, &r.cfg.BatchSize
		rows = int64(r.cfg.ScaleRows)
		want = (rows + int64(r.cfg.BatchSize) - 1) / int64(r.cfg.BatchSize)
	}
	nr.MaxInFlight = &p.MaxInFlight

	dataURL := ""
	if work == workInPlace {
		u, drop, err := r.copyOf(ctx, tpl)
		if err != nil {
			return p, err
		}
		defer drop()
		dataURL = u
	}
	de, err := r.dripflowEnv(ctx, dataURL, storeKind == storeRedis)
	if err != nil {
		return p, err
	}
	defer de.close()
	if de.dbURL == "" {
		// The processes refuse to start without an application database.
		name, u, err := r.svc.createDB(ctx, "", false)
		if err != nil {
			return p, err
		}
		defer r.svc.dropDB(context.WithoutCancel(ctx), name)
		de.dbURL = u
	}
	dbName, err := databaseName(de.dbURL)
	if err != nil {
		return p, err
	}
	if err := mon.waitConnections(ctx, pointConns(n, p.DBMaxConns, storeKind == storeSQL), r.logf); err != nil {
		return p, err
	}
	// The processes' connections are told from the benchmark's own by
	// their application_name.
	procDB, err := url.Parse(de.dbURL)
	if err != nil {
		return p, err
	}
	q := procDB.Query()
	q.Set("application_name", scaleAppName)
	procDB.RawQuery = q.Encode()

	dir, err := os.MkdirTemp("", "dripflow-bench-scale-")
	if err != nil {
		return p, err
	}
	defer os.RemoveAll(dir)
	env := []string{
		"DRIPFLOW_REDIS_URL=" + de.redisURL, "DRIPFLOW_DATABASE_URL=" + procDB.String(), "DRIPFLOW_STORE=" + storeKind,
		"DRIPFLOW_LOG_LEVEL=warn", "DRIPFLOW_LOG_FORMAT=console", "DRIPFLOW_METRICS_ADDR=127.0.0.1:0",
	}
	var sch *process
	var workers []*process
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		var wg sync.WaitGroup
		for _, q := range append([]*process{sch}, workers...) {
			if q != nil {
				wg.Add(1)
				go func() { defer wg.Done(); q.stop() }()
			}
		}
		wg.Wait()
	}
	defer stopAll()
	start := func(mode, name string, extra ...string) (*process, error) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
		return startProcess(mode, d, append(slices.Clone(env), extra...)...)
	}
	if sch, err = start("scheduler", "scheduler", "DRIPFLOW_DB_MAX_CONNS=4"); err != nil {
		return p, err
	}
	for i := range n {
		w, err := start("worker", fmt.Sprintf("worker-%d", i+1),
			"DRIPFLOW_WORKER_CONCURRENCY="+strconv.Itoa(conc), "DRIPFLOW_DB_MAX_CONNS="+strconv.Itoa(p.DBMaxConns))
		if err != nil {
			return p, err
		}
		workers = append(workers, w)
	}
	fail := func(err error) (ScalePoint, error) {
		logs := "\n--- scheduler log ---\n" + sch.tail(10)
		for i, w := range workers {
			if t := w.tail(5); t != "" {
				logs += fmt.Sprintf("\n--- worker %d log ---\n%s", i+1, t)
			}
		}
		return p, fmt.Errorf("%w%s", err, logs)
	}
	if err := waitWorkers(ctx, de.rdb, sch, workers); err != nil {
		return fail(err)
	}

	pids := scalePIDs{scheduler: sch.cmd.Process.Pid, redis: mon.redisPID, database: dbName}
	for _, w := range workers {
		pids.workers = append(pids.workers, w.cmd.Process.Pid)
	}
	pgBefore, err := mon.pgCounters(ctx, dbName)
	if err != nil {
		return p, err
	}
	before, err := mon.snapshot(ctx, pids)
	if err != nil {
		return p, err
	}
	ctl := &control.Controller{Store: de.st, Registry: r.reg, Events: events.New(de.rdb, "")}
	rr, err := runToEnd(ctx, ctl, de.st, nr, r.cfg.Timeout)
	if err != nil {
		return fail(err)
	}
	after, err := mon.snapshot(ctx, pids)
	if err != nil {
		return p, err
	}
	// PostgreSQL's counters are flushed by each backend at most once a
	// second while it works, and when it exits: they are read once the
	// processes' connections are gone.
	stopAll()
	mon.waitBackends(ctx, dbName)
	pgAfter, err := mon.pgCounters(ctx, dbName)
	if err != nil {
		return p, err
	}

	if rr.Run.BatchesSucceeded != want {
		return p, fmt.Errorf("%d batches succeeded, want %d", rr.Run.BatchesSucceeded, want)
	}
	if work == workInPlace {
		if err := verifyBumped(ctx, dataURL, rows); err != nil {
			return p, err
		}
	}
	bs, err := allBatches(ctx, de.st, rr.Run.ID)
	if err != nil {
		return p, err
	}
	pl := pipelineOf(bs, slots, p.MaxInFlight)
	p.Pipeline = &pl
	p.Batches, p.Rows, p.Wall = want, rows, Seconds(rr.Wall)
	p.BatchesPerSec = float64(want) / rr.Wall.Seconds()
	p.RowsPerSec = float64(rows) / rr.Wall.Seconds()
	p.Usage = usageBetween(before, after)
	p.CPUPerBatch = map[string]float64{}
	for _, c := range cpuClasses {
		p.CPUPerBatch[c] = p.Usage.CPU[c] * 1000 / float64(want)
	}
	p.Redis = redisUsage(before.redis, after.redis, want)
	p.Postgres = pgUsage(pgBefore, pgAfter, want)
	p.Verdict = verdict(runtime.NumCPU(), p.Usage, &pl)
	return p, nil
}

// waitWorkers waits until the scheduler leads and every worker's queue
// server has registered.
func waitWorkers(ctx context.Context, rdb *redis.Client, sch *process, workers []*process) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, q := range append([]*process{sch}, workers...) {
			if q.exited() {
				return errors.New("a process exited before it was ready")
			}
		}
		leader, err := rdb.Exists(ctx, "dripflow:scheduler:leader").Result()
		if err != nil {
			return err
		}
		servers, err := rdb.ZCard(ctx, "asynq:servers").Result()
		if err != nil {
			return err
		}
		if leader == 1 && servers >= int64(len(workers)) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes not ready after 60s (leader %v, worker servers %d of %d)", leader == 1, servers, len(workers))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func databaseName(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	return strings.TrimPrefix(u.Path, "/"), nil
}

// redisServer is a redis-server the benchmark started.
type redisServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

func (s *redisServer) pid() int { return s.cmd.Process.Pid }

// startRedisServer starts redis-server on a free loopback port, without
// persistence (as the shared test server runs), and waits until it answers.
func startRedisServer(ctx context.Context) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "dripflow-bench-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &redisServer{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd, done: make(chan struct{}), dir: dir}
	go func() { cmd.Wait(); close(s.done) }()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx).Err() != nil {
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, errors.New("redis-server exited at start")
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, nil
}

func (s *redisServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// scaleMonitor reads the counters a point is measured by.
type scaleMonitor struct {
	pg       *pgx.Conn     // on the base database, never on a measured one
	rdb      *redis.Client // database 0 of the section's Redis (INFO is server-wide)
	redisPID int           // 0: count every redis-server process
	self     int

	maxConns         int
	pgStatStatements bool
	walOK            bool
}

func newScaleMonitor(ctx context.Context, pgURL, redisURL string, redisPID int) (*scaleMonitor, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	opts.DB = 0
	m := &scaleMonitor{pg: conn, rdb: redis.NewClient(opts), redisPID: redisPID, self: os.Getpid()}
	var maxConns string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns); err == nil {
		m.maxConns, _ = strconv.Atoi(maxConns)
	}
	var preload string
	if conn.QueryRow(ctx, "SHOW shared_preload_libraries").Scan(&preload) == nil {
		m.pgStatStatements = strings.Contains(preload, "pg_stat_statements")
	}
	var x int64
	m.walOK = conn.QueryRow(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&x) == nil
	return m, nil
}

func (m *scaleMonitor) close() {
	m.pg.Close(context.Background())
	m.rdb.Close()
}

// waitConnections waits (up to 2 minutes) until PostgreSQL has room for
// need more connections besides a margin for the others using it, so that
// a point never takes the last of a shared server's connections.
func (m *scaleMonitor) waitConnections(ctx context.Context, need int, logf func(string, ...any)) error {
	if m.maxConns == 0 {
		return nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	warned := false
	for {
		var used int
		if err := m.pg.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity").Scan(&used); err != nil {
			return err
		}
		if used+need <= m.maxConns-10 || time.Now().After(deadline) {
			if warned {
				logf("  PostgreSQL: %d of %d connections in use, %d needed", used, m.maxConns, need)
			}
			return nil
		}
		if !warned {
			logf("  PostgreSQL: %d of %d connections in use, %d needed: waiting for others to finish", used, m.maxConns, need)
			warned = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// scaleAppName is the application_name of the processes' connections.
const scaleAppName = "dripflow-bench-scale"

// waitBackends waits (up to 5s) until the stopped processes' connections
// to database name are gone: their backends have exited, and flushed their
// statistics.
func (m *scaleMonitor) waitBackends(ctx context.Context, name string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := m.pg.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2", name, scaleAppName).Scan(&n)
		if err != nil || n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// pgCounters are a database's and the server's counters at one moment.
type pgCounters struct {
	xacts, written     int64
	activeMs           float64
	walSyncs, walBytes float64
}

func (m *scaleMonitor) pgCounters(ctx context.Context, name string) (pgCounters, error) {
	var c pgCounters
	err := m.pg.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted, coalesce(active_time, 0)
		FROM pg_stat_database WHERE datname = $1`, name).Scan(&c.xacts, &c.written, &c.activeMs)
	if err != nil {
		return c, fmt.Errorf("read pg_stat_database: %w", err)
	}
	if m.walOK {
		if err := m.pg.QueryRow(ctx, "SELECT wal_sync::float8, wal_bytes::float8 FROM pg_stat_wal").Scan(&c.walSyncs, &c.walBytes); err != nil {
			return c, fmt.Errorf("read pg_stat_wal: %w", err)
		}
	}
	return c, nil
}

func pgUsage(a, b pgCounters, batches int64) PGUsage {
	f := float64(batches)
	u := PGUsage{Xacts: b.xacts - a.xacts, RowsWritten: b.written - a.written}
	u.XactsPerBatch = float64(u.Xacts) / f
	u.WrittenPerBatch = float64(u.RowsWritten) / f
	u.ActiveMsPerBatch = (b.activeMs - a.activeMs) / f
	u.WALSyncsPerBatch = (b.walSyncs - a.walSyncs) / f
	u.WALBytesPerBatch = (b.walBytes - a.walBytes) / f
	return u
}

// scalePIDs are the processes of one point.
type scalePIDs struct {
	scheduler int
	workers   []int
	redis     int    // 0: every redis-server
	database  string // PostgreSQL: the backends of this database
}

// scaleSnap is the counters at one moment of a point.
type scaleSnap struct {
	at      time.Time
	machine cpuTimes
	ticks   map[string]int64 // per class but postgres, clkTck ticks
	// backends are the ticks of each PostgreSQL backend of the run's
	// database, by pid.
	backends map[int]int64
	redis    redisCounters
}

func (m *scaleMonitor) snapshot(ctx context.Context, pids scalePIDs) (scaleSnap, error) {
	s := scaleSnap{at: time.Now(), ticks: map[string]int64{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	if s.machine, err = parseCPULine(string(b)); err != nil {
		return s, err
	}
	one := func(pid int) (int64, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		_, t, err := parseProcStat(string(b))
		return t, err
	}
	if s.ticks[classScheduler], err = one(pids.scheduler); err != nil {
		return s, fmt.Errorf("scheduler CPU time: %w", err)
	}
	for _, pid := range pids.workers {
		t, err := one(pid)
		if err != nil {
			return s, fmt.Errorf("worker CPU time: %w", err)
		}
		s.ticks[classWorkers] += t
	}
	if s.ticks[classBench], err = one(m.self); err != nil {
		return s, err
	}
	if pids.redis != 0 {
		if s.ticks[classRedis], err = one(pids.redis); err != nil {
			return s, fmt.Errorf("redis-server CPU time: %w", err)
		}
	} else {
		byName, err := ticksByName("redis-server")
		if err != nil {
			return s, err
		}
		s.ticks[classRedis] = byName["redis-server"]
	}
	// PostgreSQL's share is its backends serving the run's database (the
	// server is shared: other databases' backends, and its background
	// processes, fall under "other").
	rows, err := m.pg.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", pids.database)
	if err != nil {
		return s, fmt.Errorf("PostgreSQL backends: %w", err)
	}
	backendPIDs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return s, fmt.Errorf("PostgreSQL backends: %w", err)
	}
	s.backends = map[int]int64{}
	for _, pid := range backendPIDs {
		if t, err := one(int(pid)); err == nil { // else: it ended meanwhile
			s.backends[int(pid)] = t
		}
	}
	stats, err := m.rdb.Info(ctx, "stats").Result()
	if err != nil {
		return s, fmt.Errorf("read Redis INFO stats: %w", err)
	}
	s.redis.commands, _ = strconv.ParseInt(parseInfo(stats)["total_commands_processed"], 10, 64)
	cs, err := m.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return s, fmt.Errorf("read Redis INFO commandstats: %w", err)
	}
	s.redis.cmds = parseCommandStats(cs)
	return s, nil
}

// ticksByName sums the CPU ticks (user, system, and reaped children's) of
// every process whose command name is one of names.
func ticksByName(names ...string) (map[string]int64, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		comm, t, err := parseProcStat(string(b))
		if err == nil && slices.Contains(names, comm) {
			out[comm] += t
		}
	}
	return out, nil
}

// parseProcStat reads a /proc/<pid>/stat line: the command name and its
// utime + stime + cutime + cstime, in clock ticks.
func parseProcStat(s string) (comm string, ticks int64, err error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("/proc stat line %.40q has no (comm)", s)
	}
	comm = s[open+1 : end]
	// After "(comm)": state (field 3) … utime, stime, cutime, cstime
	// (fields 14–17).
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return comm, 0, fmt.Errorf("/proc stat line of %s has %d fields after its name, want at least 15", comm, len(f))
	}
	for _, x := range f[11:15] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return comm, 0, fmt.Errorf("/proc stat line of %s: %q is not a number", comm, x)
		}
		ticks += n
	}
	return comm, ticks, nil
}

// cpuTimes are the machine's CPU times in clock ticks, all CPUs together.
type cpuTimes struct{ busy, total int64 }

// parseCPULine reads the "cpu" line of /proc/stat: total is user, nice,
// system, idle, iowait, irq, softirq and steal (guest time is already in
// user); busy is total less idle and iowait.
func parseCPULine(stat string) (cpuTimes, error) {
	for _, line := range strings.Split(stat, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return cpuTimes{}, fmt.Errorf("/proc/stat cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat cpu line: %q is not a number", f[i+1])
			}
			v[i] = n
		}
		var t cpuTimes
		for _, x := range v {
			t.total += x
		}
		t.busy = t.total - v[3] - v[4]
		return t, nil
	}
	return cpuTimes{}, errors.New("/proc/stat has no cpu line")
}

// usageBetween is the CPU time spent between two snapshots.
func usageBetween(a, b scaleSnap) Usage {
	u := Usage{Interval: Seconds(b.at.Sub(a.at)), CPU: map[string]float64{}}
	busy := b.machine.busy - a.machine.busy
	if total := b.machine.total - a.machine.total; total > 0 {
		u.MachineBusy = float64(busy) / float64(total)
	}
	var ours int64
	for _, c := range cpuClasses {
		if c == classOther {
			continue
		}
		d := max(b.ticks[c]-a.ticks[c], 0)
		if c == classPostgres {
			// A backend that started meanwhile counts from 0; one that
			// ended meanwhile is lost (pools keep their connections).
			d = 0
			for pid, t := range b.backends {
				d += max(t-a.backends[pid], 0)
			}
		}
		ours += d
		u.CPU[c] = float64(d) / clkTck
	}
	u.CPU[classOther] = float64(max(busy-ours, 0)) / clkTck
	return u
}

// redisCounters are a Redis server's command counters at one moment.
type redisCounters struct {
	commands int64
	cmds     map[string]int64 // calls per command
}

// parseInfo reads the "field:value" lines of Redis's INFO reply.
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// parseCommandStats reads INFO commandstats
// ("cmdstat_evalsha:calls=12,usec=340,usec_per_call=28.33,…") into each
// command's calls.
func parseCommandStats(s string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range parseInfo(s) {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			if f, val, _ := strings.Cut(kv, "="); f == "calls" {
				if n, err := strconv.ParseInt(val, 10, 64); err == nil {
					out[name] = n
				}
			}
		}
	}
	return out
}

// scriptCommands run a Lua script or function.
var scriptCommands = []string{"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}

// redisUsage is what Redis did between two snapshots, per batch; the
// commands of the snapshots themselves (INFO) are left out.
func redisUsage(a, b redisCounters, batches int64) RedisUsage {
	f := float64(batches)
	u := RedisUsage{}
	for name, c := range b.cmds {
		if name == "info" {
			continue
		}
		calls := c - a.cmds[name]
		if calls <= 0 {
			continue
		}
		u.Commands += calls
		if slices.Contains(scriptCommands, name) {
			u.Scripts += calls
		}
		u.Top = append(u.Top, CommandCost{Name: name, Calls: calls, PerBatch: float64(calls) / f})
	}
	if len(b.cmds) == 0 {
		u.Commands = b.commands - a.commands // no commandstats: the total only
	}
	sort.Slice(u.Top, func(i, j int) bool {
		if u.Top[i].Calls != u.Top[j].Calls {
			return u.Top[i].Calls > u.Top[j].Calls
		}
		return u.Top[i].Name < u.Top[j].Name
	})
	if len(u.Top) > 5 {
		u.Top = u.Top[:5]
	}
	u.PerBatch = float64(u.Commands) / f
	u.ScriptsPerBatch = float64(u.Scripts) / f
	return u
}

// verdict says in one line what bounded a point on a machine of cpus CPUs:
// the machine's CPUs when they were ≥ 90 % busy; else Redis when
// redis-server (one thread) used ≥ 85 % of a CPU; else the scheduler when
// it did; else the scheduler's refill when over a quarter of the slots were
// starved (no task queued); else round trips (latency: commits, the queue's
// polling). Each class's mean busy CPUs follow.
func verdict(cpus int, u Usage, pl *Pipeline) string {
	var why string
	switch {
	case u.MachineBusy >= 0.90:
		why = fmt.Sprintf("CPU-bound: machine %.0f %% busy", u.MachineBusy*100)
	case u.cores(classRedis) >= 0.85:
		why = fmt.Sprintf("Redis-bound: redis-server %.0f %% of its one CPU (machine %.0f %% busy)", u.cores(classRedis)*100, u.MachineBusy*100)
	case u.cores(classScheduler) >= 0.85:
		why = fmt.Sprintf("scheduler-bound: scheduler %.0f %% of a CPU (machine %.0f %% busy)", u.cores(classScheduler)*100, u.MachineBusy*100)
	case pl != nil && pl.Slots > 0 && pl.StarvedSlots > 0.25*float64(pl.Slots):
		why = fmt.Sprintf("refill-bound: %.1f of %d slots starved (no task queued), machine %.0f %% busy", pl.StarvedSlots, pl.Slots, u.MachineBusy*100)
	default:
		why = fmt.Sprintf("latency-bound: machine %.0f %% busy, no process class saturated", u.MachineBusy*100)
	}
	type share struct {
		class string
		cores float64
	}
	var shares []share
	for _, c := range cpuClasses {
		if x := u.cores(c); x >= 0.005 {
			shares = append(shares, share{c, x})
		}
	}
	sort.SliceStable(shares, func(i, j int) bool { return shares[i].cores > shares[j].cores })
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%s %.2f", s.class, s.cores)
	}
	if len(parts) == 0 {
		return why
	}
	return fmt.Sprintf("%s; CPUs of %d: %s", why, cpus, strings.Join(parts, ", "))
}

// writeTable writes the section's two tables: throughput, and what each
// point spent.
func (s *ScaleResult) writeTable(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	redisNote := "a redis-server of its own"
	if !s.PrivateRedis {
		redisNote = "the shared Redis (its figures include other clients')"
	}
	p("### 7. Scaling with worker processes (one scheduler and N workers as processes; %s no-op batches; in-place backfill of %s rows, batch size %d; %s; %d CPUs)",
		count(s.NoopBatches), count(s.Rows), s.BatchSize, redisNote, s.CPUs)
	p("")
	p("| work | store | workers × concurrency | max_in_flight | wall | batches/s | rows/s | vs fewest | busy slots (starved) | verdict |")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, pt := range s.Points {
		busy := ""
		if pl := pt.Pipeline; pl != nil && pl.Batches > 0 {
			busy = fmt.Sprintf("%.1f (%.1f) of %d", pl.BusySlots, pl.StarvedSlots, pl.Slots)
		}
		p("| %s | %s | %d × %d | %d | %.2f s | %s | %s | %.2f× | %s | %s |", pt.Work, pt.Store, pt.Workers, pt.Concurrency, pt.MaxInFlight,
			pt.Wall.Seconds(), rate(pt.BatchesPerSec), rate(pt.RowsPerSec), pt.Speedup, busy, pt.Verdict)
	}
	p("")
	p("CPU time per batch by process class, and what a batch asked of Redis (every command executed, those inside Lua scripts included; in brackets the scripts) and PostgreSQL (the run's database; WAL: the whole server):")
	p("")
	p("| work | store | workers × concurrency | CPU ms/batch: workers | scheduler | postgres | redis | other | Redis commands/batch (scripts) | top Redis commands per batch | PG xacts/batch | PG rows written/batch | PG active ms/batch | WAL syncs/batch |")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
	for _, pt := range s.Points {
		top := make([]string, len(pt.Redis.Top))
		for i, c := range pt.Redis.Top {
			top[i] = fmt.Sprintf("%s %.1f", c.Name, c.PerBatch)
		}
		c := pt.CPUPerBatch
		p("| %s | %s | %d × %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f (%.1f) | %s | %.2f | %.2f | %.2f | %.2f |", pt.Work, pt.Store, pt.Workers, pt.Concurrency,
			c[classWorkers], c[classScheduler], c[classPostgres], c[classRedis], c[classOther],
			pt.Redis.PerBatch, pt.Redis.ScriptsPerBatch, strings.Join(top, ", "),
			pt.Postgres.XactsPerBatch, pt.Postgres.WrittenPerBatch, pt.Postgres.ActiveMsPerBatch, pt.Postgres.WALSyncsPerBatch)
	}
	p("")
	if !s.PGStatStatements {
		p("PostgreSQL is counted in transactions (pg_stat_database), not statements: pg_stat_statements is not in shared_preload_libraries.")
		p("")
	}
}
