package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
)

// A Redis primary, its replica and three sentinels of the test's own, on
// free loopback ports in temporary directories. DRIPFLOW_REDIS_URL names
// the sentinels (redis-sentinel://…/master): the processes find the
// primary through them and follow a failover.

const sentinelMaster = "dripflow-e2e"

type sentinelSet struct {
	t         *testing.T
	primary   *redisProc
	replica   *redisProc
	sentinels []*redisProc
}

// redisProc is one redis-server (or sentinel) process.
type redisProc struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// kill ends it at once (SIGKILL).
func (p *redisProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

// startRedisProc starts redis-server with args on a free port and waits
// until it answers PING.
func startRedisProc(t *testing.T, bin string, args ...string) *redisProc {
	t.Helper()
	p := &redisProc{port: freePort(t), done: make(chan struct{})}
	full := append([]string{}, args...)
	full = append(full, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1", "--loglevel", "warning")
	p.cmd = exec.Command(bin, full...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	logf, err := os.Create(filepath.Join(t.TempDir(), "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(p.kill)
	c := redis.NewClient(&redis.Options{Addr: p.addr()})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s %v exited at start:\n%s", bin, args, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on port %d did not answer within 20s", bin, p.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// startSentinelSet starts a primary, a replica and three sentinels that
// agree (quorum 2) to fail over one second after the primary stops
// answering.
func startSentinelSet(t *testing.T) *sentinelSet {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		needBinary(t, "redis-server", err)
	}
	// Debian's redis-sentinel package (scripts/test-services.sh installs
	// it); redis-server --sentinel is the same program.
	sentinelBin, sentinelArgs := "", []string(nil)
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		sentinelBin = p
	} else {
		if testenv.InCI() {
			t.Fatalf("redis-sentinel is required in CI (CI=true): %v", err)
		}
		sentinelBin, sentinelArgs = server, []string{"--sentinel"}
	}
	s := &sentinelSet{t: t}
	persist := []string{"--save", "", "--appendonly", "no"}
	s.primary = startRedisProc(t, server, append(persist, "--dir", t.TempDir())...)
	s.replica = startRedisProc(t, server, append(persist, "--dir", t.TempDir(), "--replicaof", "127.0.0.1", strconv.Itoa(s.primary.port))...)
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("dir %s\nsentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %[2]s 1000\n"+
			"sentinel failover-timeout %[2]s 10000\nsentinel parallel-syncs %[2]s 1\n", dir, sentinelMaster, s.primary.port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s.sentinels = append(s.sentinels, startRedisProc(t, sentinelBin, append([]string{conf}, sentinelArgs...)...))
	}
	// Ready when every sentinel knows the replica and the two other
	// sentinels (they find each other through the primary's hello channel).
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for _, sp := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sp.addr()})
		for {
			replicas, _ := sc.Replicas(ctx, sentinelMaster).Result()
			others, _ := sc.Sentinels(ctx, sentinelMaster).Result()
			if len(replicas) == 1 && len(others) == 2 {
				break
			}
			if time.Now().After(deadline) {
				sc.Close()
				t.Fatalf("sentinel %s sees %d replicas and %d other sentinels after 30s, want 1 and 2", sp.addr(), len(replicas), len(others))
			}
			time.Sleep(100 * time.Millisecond)
		}
		sc.Close()
	}
	return s
}

// URL is the DRIPFLOW_REDIS_URL naming the three sentinels.
func (s *sentinelSet) URL() string {
	return fmt.Sprintf("redis-sentinel://%s,%s,%s/%s/0", s.sentinels[0].addr(), s.sentinels[1].addr(), s.sentinels[2].addr(), sentinelMaster)
}

// primaryAddr is the primary's address as the first sentinel that answers
// says.
func (s *sentinelSet) primaryAddr() string {
	for _, sp := range s.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sp.addr()})
		addr, err := sc.GetMasterAddrByName(context.Background(), sentinelMaster).Result()
		sc.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1]
		}
	}
	return ""
}

// The primary is SIGKILLed in the middle of a backfill: the sentinels
// promote the replica, every process finds it through them, and the run
// succeeds with every row changed exactly once. What the failover can lose
// (the last writes that had not reached the replica: an enqueue, a
// dequeue, a heartbeat) is recovered as after any Redis loss — the
// scheduler re-enqueues a task the store calls enqueued that the queue no
// longer has, a task delivered again is refused by its checkpoint.
func TestProcessSentinelFailover(t *testing.T) {
	pg := testenv.PostgresURL(t) // skips (fails in CI) before any server starts
	set := startSentinelSet(t)
	c := newClusterAt(t, pg, set.URL())
	c.env = fastHeartbeat
	c.scheduler()
	c.worker(2)
	c.worker(2)
	r := startFaultRun(c, "e2e_bump")
	notOverYet(c, r)
	if got := set.primaryAddr(); got != set.primary.addr() {
		t.Fatalf("before the failover the sentinels name %q as primary, want %s", got, set.primary.addr())
	}
	killed := time.Now()
	set.primary.kill()
	c.waitFor("the sentinels to promote the replica", 30*time.Second, func() bool { return set.primaryAddr() == set.replica.addr() })
	t.Logf("replica promoted %s after the kill", time.Since(killed).Round(time.Millisecond))
	if got := c.run(r.ID); got.State.Terminal() {
		t.Fatalf("the run ended (%s) before the failover was over: it tested nothing", got.State)
	}
	r = c.waitDone(r.ID, 2*time.Minute)
	t.Logf("run done %s after the kill; reconciler re-enqueued a lost task: %v", time.Since(killed).Round(time.Millisecond),
		c.logged("scheduler", "re-enqueued a lost batch task"))
	c.assertExactlyOnce(r, faultItems, faultBatchSize)
	// The processes work on the promoted replica: the queue's keys are
	// there. (Not asynq:queues: asynq's client adds a queue to it once per
	// process, so that write can be the one the failover lost.)
	promoted := redis.NewClient(&redis.Options{Addr: set.replica.addr()})
	defer promoted.Close()
	if keys, _, err := promoted.Scan(context.Background(), 0, "asynq:{*}:*", 1000).Result(); err != nil || len(keys) == 0 {
		t.Errorf("the queue's keys on the promoted replica: %v, %v", keys, err)
	}
}
