package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/control"
	"github.com/dripflow/dripflow/pkg/store/redisstore"
)

// startRedisCluster starts a Redis Cluster of three primaries (no
// replicas) of the test's own on free loopback ports and returns its
// redis-cluster:// URL once every slot is served.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		needBinary(t, "redis-server", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		needBinary(t, "redis-cli", err)
	}
	var nodes []*redisProc
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		nodes = append(nodes, startRedisProc(t, server, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
			"--cluster-port", strconv.Itoa(freePort(t)), "--cluster-node-timeout", "2000",
			"--save", "", "--appendonly", "no", "--dir", dir))
	}
	args := []string{"--cluster", "create"}
	var addrs []string
	for _, n := range nodes {
		args = append(args, n.addr())
		addrs = append(addrs, n.addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c := redis.NewClient(&redis.Options{Addr: nodes[0].addr()})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, _ := c.ClusterInfo(context.Background()).Result()
		if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ok after 30s:\n%s", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// A backfill with the queue, the leader lease, events and worker presence
// on a three-primary Redis Cluster (the store in PostgreSQL): every row
// changes exactly once, and the queue's keys are on the cluster. The Redis
// store refuses the cluster with a clear message instead.
func TestProcessRedisCluster(t *testing.T) {
	pg := testenv.PostgresURL(t) // skips (fails in CI) before any server starts
	start := time.Now()
	url := startRedisCluster(t)
	t.Logf("cluster up after %s", time.Since(start).Round(time.Millisecond))
	c := newClusterAt(t, pg, url)
	c.env = fastHeartbeat
	c.scheduler()
	c.worker(2)
	c.worker(2)
	const items, size = 2000, 100
	c.seedItems(items)
	r := c.createRun(control.NewRun{BatchSize: ptr(size), MaxInFlight: ptr(8), MaxAttempts: ptr(3)})
	r = c.waitDone(r.ID, 2*time.Minute)
	c.assertExactlyOnce(r, items, size)
	t.Logf("run done after %s", time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	cc, ok := c.rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("the harness's client is %T, want a cluster client", c.rdb)
	}
	// The workers' presence registry and the queue live on the cluster.
	if n, err := cc.HLen(ctx, "dripflow:workers").Result(); err != nil || n != 2 {
		t.Errorf("dripflow:workers on the cluster: %d workers, %v; want 2", n, err)
	}
	if n, err := cc.Exists(ctx, "asynq:queues").Result(); err != nil || n != 1 {
		t.Errorf("asynq:queues on the cluster: %d, %v", n, err)
	}
	// Keys are spread over the primaries (not a single node in disguise).
	// ForEachMaster calls fn on every primary at once.
	var nodesWithKeys atomic.Int32
	cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if n, _ := m.DBSize(ctx).Result(); n > 0 {
			nodesWithKeys.Add(1)
		}
		return nil
	})
	if nodesWithKeys.Load() < 2 {
		t.Errorf("keys on %d of 3 primaries, want them spread", nodesWithKeys.Load())
	}

	// A worker with DRIPFLOW_STORE=redis on the cluster exits at once and
	// says why.
	bad := exec.Command(c.bin, "worker")
	bad.Env = append(bad.Environ(), "DRIPFLOW_REDIS_URL="+url, "DRIPFLOW_DATABASE_URL="+c.dbURL, "DRIPFLOW_STORE=redis", "DRIPFLOW_METRICS_ADDR=off")
	out, err := runWithTimeout(bad, 30*time.Second)
	t.Logf("refusal after %s", time.Since(start).Round(time.Millisecond))
	if err == nil || !strings.Contains(out, redisstore.ErrCluster.Error()) || !strings.Contains(out, "SQL store") {
		t.Errorf("worker with the Redis store on a cluster: %v\n%s\nwant it to exit saying %q and pointing to the SQL store", err, out, redisstore.ErrCluster)
	}
}

// runWithTimeout runs cmd and returns its combined output.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return buf.String(), fmt.Errorf("still running after %s", d)
	}
}
