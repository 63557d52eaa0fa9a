package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store"
)

// Workers on hosts of their own: each worker host is a Linux network
// namespace joined to the test's (the "db" host: PostgreSQL, Redis, the
// scheduler) by a veth pair with a /30 of 10.213.0.0/16. Loopback-range
// addresses cannot be used: Linux drops 127.0.0.0/8 on any interface but
// lo as martian, and a namespace's lo is its own. The shared PostgreSQL
// and Redis listen on 127.0.0.1 only, so the db host forwards a port on
// each veth address to them (a TCP relay in the test), as a load balancer
// or a proxy in front of them would.

// netHost is a worker host: a network namespace and its link.
type netHost struct {
	ns     string // namespace name
	outer  string // the veth end in the db host's namespace
	gw     string // the db host's address on the link
	addr   string // the worker host's address
	relays []*relay
}

// needNetns skips the test (fails it under CI=true) where namespaces
// cannot be made: not root, no ip(8), or no permission (a container
// without CAP_SYS_ADMIN).
func needNetns(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root (network namespaces and veth pairs need root)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "no ip(8) (Debian package iproute2)"
	} else {
		probe := "dfprobe-" + randHex(4)
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			why = fmt.Sprintf("cannot make a network namespace: %v: %s", err, strings.TrimSpace(string(out)))
		} else {
			exec.Command("ip", "netns", "del", probe).Run()
		}
	}
	if why == "" {
		return
	}
	if testenv.InCI() {
		t.Fatalf("the network partition test must run in CI (CI=true): %s", why)
	}
	t.Skipf("network partition test skipped: %s", why)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// ipCmd runs ip(8) and fails the test on an error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNetHost makes namespace tag-<id> with a veth link to the test's
// namespace on 10.213.<subnet>.0/30. Names are unique per run (a leftover
// of a killed run cannot collide) and the namespace is deleted when the
// test ends, failed or not.
func newNetHost(t *testing.T, id string, subnet int) *netHost {
	t.Helper()
	h := &netHost{ns: "dripflow-e2e-" + id, outer: "dfo" + id, gw: fmt.Sprintf("10.213.%d.1", subnet), addr: fmt.Sprintf("10.213.%d.2", subnet)}
	inner := "dfi" + id
	ipCmd(t, "netns", "add", h.ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", h.outer).Run()
		if out, err := exec.Command("ip", "netns", "del", h.ns).CombinedOutput(); err != nil {
			t.Errorf("delete namespace %s: %v: %s", h.ns, err, out)
		}
	})
	ipCmd(t, "link", "add", h.outer, "type", "veth", "peer", "name", inner)
	ipCmd(t, "link", "set", inner, "netns", h.ns)
	ipCmd(t, "addr", "add", h.gw+"/30", "dev", h.outer)
	ipCmd(t, "link", "set", h.outer, "up")
	ipCmd(t, "-n", h.ns, "addr", "add", h.addr+"/30", "dev", inner)
	ipCmd(t, "-n", h.ns, "link", "set", inner, "up")
	ipCmd(t, "-n", h.ns, "link", "set", "lo", "up")
	return h
}

// forward makes target (host:port, on the db host's loopback) reachable
// from the worker host at gw:<port>, and returns that address.
func (h *netHost) forward(t *testing.T, target string) string {
	t.Helper()
	r := startRelay(t, h.gw+":0", target)
	h.relays = append(h.relays, r)
	return r.ln.Addr().String()
}

// linkDown cuts the worker host off; linkUp joins it again.
func (h *netHost) linkDown(t *testing.T) { ipCmd(t, "link", "set", h.outer, "down") }
func (h *netHost) linkUp(t *testing.T)   { ipCmd(t, "link", "set", h.outer, "up") }

// relay is a TCP relay: every connection accepted on ln is joined to a new
// connection to target.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startRelay(t *testing.T, listen, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("relay on %s: %v", listen, err)
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(r.close)
	return r
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", r.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		r.conns[in], r.conns[out] = true, true
		r.mu.Unlock()
		r.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer r.wg.Done()
			io.Copy(dst, src)
			// Either side gone: drop both, as a proxy would.
			dst.Close()
			src.Close()
			r.mu.Lock()
			delete(r.conns, dst)
			delete(r.conns, src)
			r.mu.Unlock()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// withHost returns rawURL with its host:port replaced by hostport.
func withHost(t *testing.T, rawURL, hostport string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = hostport
	return u.String()
}

// hostOf returns the host:port of a URL (the default port when it has none).
func hostOf(t *testing.T, rawURL, defPort string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defPort)
	}
	return u.Host
}

// startOn starts a dripflow process on the worker host h: in its
// namespace, reaching Redis and PostgreSQL through the db host's relays.
func (c *cluster) startOn(h *netHost, mode string, args ...string) *proc {
	c.t.Helper()
	redisAt := h.forward(c.t, hostOf(c.t, c.redisURL, "6379"))
	pgAt := h.forward(c.t, hostOf(c.t, c.dbURL, "5432"))
	c.mu.Lock()
	c.n++
	name := fmt.Sprintf("%s-%d@%s", mode, c.n, h.ns)
	c.mu.Unlock()
	logPath := filepath.Join(c.logDir, strings.ReplaceAll(name, "@", "-")+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	// ip netns exec execs the program in place: the pid (and so the
	// worker id host:pid) is the worker's.
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, c.bin, mode}, args...)...)
	cmd.Env = append(os.Environ(),
		"DRIPFLOW_DATABASE_URL="+withHost(c.t, c.dbURL, pgAt),
		"DRIPFLOW_REDIS_URL="+withHost(c.t, c.redisURL, redisAt),
		"DRIPFLOW_STORE=sql",
		"DRIPFLOW_LOG_FORMAT=console",
		"DRIPFLOW_LOG_LEVEL=info",
		"DRIPFLOW_CLAIM_LEASE=5s",
		"DRIPFLOW_SHUTDOWN_TIMEOUT=10s",
		"DRIPFLOW_METRICS_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdout, cmd.Stderr = f, f
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

// Two worker hosts; the link of the one holding batches is cut mid-run.
// Its heartbeat stops reaching Redis, the scheduler rescues its claims and
// the other host runs those batches. When the link comes back, the cut-off
// worker's attempts (still open, their database sessions ended by the idle
// transaction timeout) cannot commit: every row is changed exactly once
// and the rescued batches keep the other worker's result.
func TestProcessNetworkPartitionedWorker(t *testing.T) {
	needNetns(t)
	c := newCluster(t)
	c.env = fastHeartbeat
	id := randHex(6)
	n, _ := rand.Int(rand.Reader, big.NewInt(200))
	subnet := int(n.Int64())
	h1 := newNetHost(t, id+"a", subnet)
	h2 := newNetHost(t, id+"b", subnet+1)
	c.scheduler()
	w1 := c.startOn(h1, "worker", "--concurrency=2")
	w2 := c.startOn(h2, "worker", "--concurrency=2")
	// Stop the processes before their relays and namespaces go (cleanups
	// run last-registered first).
	t.Cleanup(c.stopAll)

	const items, size = 3000, 100
	c.seedItems(items)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(4), MaxAttempts: ptr(10), Params: json.RawMessage(`{"sleep_ms":1000}`)})
	c.waitFor("a batch running on worker host 1", time.Minute, func() bool { return c.holdsBatch(r.ID, w1) && c.holdsBatch(r.ID, w2) })
	held := c.heldBy(r.ID, w1)
	if len(held) == 0 {
		t.Fatal("worker host 1 holds no batch at the cut")
	}
	h1.linkDown(t)
	cut := time.Now()
	t.Logf("cut worker host 1 off holding batches %v", held)
	linkBack := false
	defer func() {
		if !linkBack {
			h1.linkUp(t)
		}
	}()
	c.waitFor("the cut-off host's batches to succeed elsewhere", time.Minute, func() bool {
		bs := c.batchesOf(r.ID)
		for _, seq := range held {
			if bs[seq].State != store.BatchSucceeded {
				return false
			}
		}
		return true
	})
	t.Logf("its batches rescued and done %s after the cut", time.Since(cut).Round(time.Millisecond))
	w1Suffix := fmt.Sprintf(":%d", w1.cmd.Process.Pid)
	for _, seq := range held {
		b := c.batchesOf(r.ID)[seq]
		if strings.HasSuffix(b.Worker, w1Suffix) || b.Attempts < 2 {
			t.Errorf("batch %d: worker %s, %d attempts; want it rescued and run by another worker", seq, b.Worker, b.Attempts)
		}
	}

	h1.linkUp(t)
	linkBack = true
	// The cut-off worker's attempts end now, refused: their database
	// sessions are gone and their claims were taken over.
	c.waitFor("the cut-off worker to give up its stale attempts", time.Minute, func() bool {
		b, _ := os.ReadFile(w1.log)
		s := string(b)
		return strings.Contains(s, "batch failed") || strings.Contains(s, "taken over by another attempt")
	})
	r = c.waitDone(r.ID, 2*time.Minute)
	c.assertExactlyOnce(r, items, size)
	for _, seq := range held {
		b := c.batchesOf(r.ID)[seq]
		if b.State != store.BatchSucceeded || strings.HasSuffix(b.Worker, w1Suffix) {
			t.Errorf("after the cut-off worker came back, batch %d is %s by %s", seq, b.State, b.Worker)
		}
	}
	select {
	case <-w1.done:
		t.Errorf("the cut-off worker exited; it should carry on once its link is back")
	default:
	}
}
