package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel writes
	// it; utime 1500, stime 300, cutime 40, cstime 2.
	line := "4242 (postgres: a (b)) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1500 300 40 2 20 0 1 0 12345 200000000 3000 18446744073709551615\n"
	comm, ticks, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if comm != "postgres: a (b)" || ticks != 1842 {
		t.Errorf("parseProcStat = %q, %d; want \"postgres: a (b)\", 1842", comm, ticks)
	}
	for _, bad := range []string{"", "12 postgres S 1", "12 (redis-server) S 1 2 3", "12 (x) S 1 2 3 4 5 6 7 8 9 10 x 2 3 4 5"} {
		if _, _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) = nil error", bad)
		}
	}
}

func TestParseCPULine(t *testing.T) {
	stat := "cpu  100 5 50 800 20 3 2 1 7 0\ncpu0 50 2 25 400 10 1 1 0 3 0\nintr 123\n"
	got, err := parseCPULine(stat)
	if err != nil {
		t.Fatal(err)
	}
	// total: user … steal (guest is inside user); busy: less idle and iowait.
	if got.total != 981 || got.busy != 161 {
		t.Errorf("parseCPULine = %+v, want total 981, busy 161", got)
	}
	for _, bad := range []string{"intr 1\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) = nil error", bad)
		}
	}
}

func TestRedisUsage(t *testing.T) {
	before := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=100,usec=2000,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=90,usec_per_call=30.00\r\n")
	after := parseCommandStats("# Commandstats\r\ncmdstat_evalsha:calls=500,usec=10000,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=5,usec=150,usec_per_call=30.00\r\ncmdstat_zadd:calls=200,usec=400,usec_per_call=2.00\r\n" +
		"cmdstat_client|setname:calls=200,usec=100,usec_per_call=0.50\r\n")
	u := redisUsage(redisCounters{cmds: before}, redisCounters{cmds: after}, 100)
	// INFO (the snapshots' own) is left out; ties by name.
	if u.Commands != 800 || u.PerBatch != 8 || u.Scripts != 400 || u.ScriptsPerBatch != 4 || len(u.Top) != 3 ||
		u.Top[0].Name != "evalsha" || u.Top[0].PerBatch != 4 ||
		u.Top[1].Name != "client|setname" || u.Top[2].Name != "zadd" {
		t.Errorf("redisUsage = %+v", u)
	}
	if v := parseInfo("# Stats\r\ntotal_commands_processed:4711\r\n")["total_commands_processed"]; v != "4711" {
		t.Errorf("parseInfo: total_commands_processed %q", v)
	}
}

func TestUsageAndVerdict(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	a := scaleSnap{at: at, machine: cpuTimes{busy: 1000, total: 5000},
		ticks:    map[string]int64{classWorkers: 100, classScheduler: 10, classRedis: 50, classBench: 5},
		backends: map[int]int64{11: 400, 12: 100, 13: 70}}
	// 10 s on 2 CPUs: 2000 ticks, 1900 of them busy.
	b := scaleSnap{at: at.Add(10 * time.Second), machine: cpuTimes{busy: 2900, total: 7000},
		ticks: map[string]int64{classWorkers: 900, classScheduler: 110, classRedis: 250, classBench: 15},
		// Backend 13 ended (lost), 14 started (counted from 0).
		backends: map[int]int64{11: 700, 12: 150, 14: 150}}
	u := usageBetween(a, b)
	if u.MachineBusy != 0.95 || u.CPU[classWorkers] != 8 || u.CPU[classPostgres] != 5 || u.CPU[classRedis] != 2 ||
		u.CPU[classScheduler] != 1 || u.CPU[classBench] != 0.1 || u.CPU[classOther] != 2.9 {
		t.Errorf("usageBetween = %+v", u)
	}
	got := verdict(2, u, nil)
	want := "CPU-bound: machine 95 % busy; CPUs of 2: workers 0.80, postgres 0.50, other 0.29, redis 0.20, scheduler 0.10, bench 0.01"
	if got != want {
		t.Errorf("verdict:\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		u    Usage
		pl   *Pipeline
		want string
	}{
		{Usage{Interval: Seconds(time.Second), MachineBusy: 0.6, CPU: map[string]float64{classRedis: 0.9}}, nil, "Redis-bound: redis-server 90 %"},
		{Usage{Interval: Seconds(time.Second), MachineBusy: 0.6, CPU: map[string]float64{classScheduler: 0.95}}, nil, "scheduler-bound"},
		{Usage{Interval: Seconds(time.Second), MachineBusy: 0.5}, &Pipeline{Slots: 16, StarvedSlots: 8}, "refill-bound: 8.0 of 16 slots starved"},
		{Usage{Interval: Seconds(time.Second), MachineBusy: 0.5}, &Pipeline{Slots: 16, StarvedSlots: 1}, "latency-bound: machine 50 % busy"},
	} {
		if got := verdict(2, c.u, c.pl); !strings.HasPrefix(got, c.want) {
			t.Errorf("verdict(%+v) = %q, want it to start with %q", c.u, got, c.want)
		}
	}
}

func TestWorkerDBConns(t *testing.T) {
	for _, c := range []struct {
		n, conc int
		sql     bool
		want    int
	}{
		{1, 2, true, 4}, {1, 8, true, 10}, {4, 8, true, 8}, {8, 2, true, 2}, {8, 8, true, 2},
		{8, 2, false, 4}, {8, 8, false, 6},
	} {
		got := workerDBConns(c.n, c.conc, c.sql)
		if got != c.want {
			t.Errorf("workerDBConns(%d, %d, sql %v) = %d, want %d", c.n, c.conc, c.sql, got, c.want)
		}
		// Eight SQL-store workers and the scheduler stay well inside
		// PostgreSQL's default max_connections (100).
		if total := pointConns(c.n, got, c.sql); total > 70 {
			t.Errorf("%d workers of %d connections: %d in all", c.n, got, total)
		}
	}
}

func TestParseScaleFlags(t *testing.T) {
	if _, err := ParseFlags([]string{"--scale-rows", "10k"}, &strings.Builder{}); err == nil {
		t.Fatal("--scale-rows 10k accepted: it is an integer flag")
	}
	cfg, err := ParseFlags([]string{"--only", "scale", "--scale-procs", "1,3", "--scale-concurrency", "4"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.runs(SectionScale) || cfg.runs(SectionNoop) || len(cfg.ScaleProcs) != 2 || cfg.ScaleProcs[1] != 3 || cfg.ScaleConcurrency[0] != 4 {
		t.Errorf("parsed %+v", cfg)
	}
	for _, bad := range [][]string{{"--scale-procs", "0,2"}, {"--scale-procs", ""}, {"--scale-concurrency", "x"}, {"--scale-noop-batches", "0"}} {
		if _, err := ParseFlags(bad, &strings.Builder{}); err == nil {
			t.Errorf("ParseFlags(%q) = nil error", bad)
		}
	}
}
