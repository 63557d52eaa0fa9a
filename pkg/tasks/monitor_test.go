package tasks_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisurl"
	"github.com/dripflow/dripflow/internal/testenv"
	"github.com/dripflow/dripflow/pkg/tasks"
)

// asynq's connection option follows the URL's form: a failover client for
// Sentinel, a cluster client for a Cluster.
func TestRedisConnOptFollowsTheURLForm(t *testing.T) {
	for url, want := range map[string]string{
		"redis://127.0.0.1:6379/2":                          "*redis.Client",
		"redis-sentinel://127.0.0.1:1,127.0.0.1:2/mymaster": "*redis.Client",
		"redis-cluster://127.0.0.1:1,127.0.0.1:2":           "*redis.ClusterClient",
	} {
		o, err := redisurl.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := tasks.RedisConnOpt(o).MakeRedisClient().(redis.UniversalClient)
		if !ok {
			t.Fatalf("%s: MakeRedisClient is not a redis.UniversalClient", url)
		}
		if got := typeName(c); got != want {
			t.Errorf("%s: client %s, want %s", url, got, want)
		}
		c.Close()
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	case *redis.Client:
		return "*redis.Client"
	}
	return "other"
}

// The monitor answers on a real Redis, and refuses a bad URL saying why
// without its password.
func TestMonitorURLs(t *testing.T) {
	m, err := tasks.Monitor(tasks.MonitorOptions{RedisURL: testenv.RedisURL(t), RootPath: "/monitoring"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/monitoring/api/queues", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /monitoring/api/queues: %d %s", rec.Code, rec.Body)
	}
	_, err = tasks.Monitor(tasks.MonitorOptions{RedisURL: "redis-sentinel://:hunter2@h1,h2"})
	if err == nil || !strings.Contains(err.Error(), "no master name") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Monitor with a sentinel URL without master: %v", err)
	}
}
