package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"DRIPFLOW_REDIS_URL": "redis://r:6379/1", "DRIPFLOW_DATABASE_URL": "postgres://db/x",
		"DRIPFLOW_STORE": "redis", "DRIPFLOW_WORKER_CONCURRENCY": "8", "DRIPFLOW_CLAIM_LEASE": "45s",
		"DRIPFLOW_DB_MAX_CONNS": "6",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "redis" || c.WorkerConcurrency != 8 || c.DBMaxConns != 6 || c.ClaimLease != 45*time.Second || c.Queue != "dripflow" || c.LogFormat != "json" {
		t.Fatalf("config %+v", c)
	}
	if err := c.Require(); err != nil {
		t.Fatalf("Require: %v", err)
	}
}

func TestFromEnvRejectsBadValues(t *testing.T) {
	for name, value := range map[string]string{
		"DRIPFLOW_STORE": "mongo", "DRIPFLOW_LOG_FORMAT": "xml", "DRIPFLOW_LOG_LEVEL": "loud",
		"DRIPFLOW_WORKER_CONCURRENCY": "-2", "DRIPFLOW_DB_MAX_CONNS": "many", "DRIPFLOW_CLAIM_LEASE": "soon", "DRIPFLOW_SHUTDOWN_TIMEOUT": "0s",
		"DRIPFLOW_WORKER_HEARTBEAT_INTERVAL": "-1s", "DRIPFLOW_WORKER_HEARTBEAT_TTL": "1s",
	} {
		_, err := FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v should name the variable", name, value, err)
		}
	}
}

func TestFromEnvHeartbeat(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeartbeatInterval != 2*time.Second || c.HeartbeatTTL != 6*time.Second {
		t.Fatalf("heartbeat defaults %s/%s, want 2s/6s", c.HeartbeatInterval, c.HeartbeatTTL)
	}
	c, err = FromEnv(env(map[string]string{"DRIPFLOW_WORKER_HEARTBEAT_INTERVAL": "500ms", "DRIPFLOW_WORKER_HEARTBEAT_TTL": "2s"}))
	if err != nil || c.HeartbeatInterval != 500*time.Millisecond || c.HeartbeatTTL != 2*time.Second {
		t.Fatalf("heartbeat 500ms/2s: %s/%s, %v", c.HeartbeatInterval, c.HeartbeatTTL, err)
	}
	_, err = FromEnv(env(map[string]string{"DRIPFLOW_WORKER_HEARTBEAT_INTERVAL": "5s"}))
	if err == nil || !strings.Contains(err.Error(), "DRIPFLOW_WORKER_HEARTBEAT_TTL") {
		t.Fatalf("interval 5s with the 6s TTL: %v, want an error naming DRIPFLOW_WORKER_HEARTBEAT_TTL", err)
	}
}

func TestRequireNamesWhatIsMissing(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Require()
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "DRIPFLOW_REDIS_URL") || !strings.Contains(err.Error(), "DRIPFLOW_DATABASE_URL") {
		t.Fatalf("Require() = %v", err)
	}
}

func TestFromEnvWebHardening(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPReadTimeout != time.Minute || c.HTTPIdleTimeout != 2*time.Minute || c.MaxEventStreams != 200 || c.MaxEventStreamsPerIdentity != 20 || c.TrustedProxies != "" || c.ProxySecret != "" {
		t.Fatalf("defaults %+v", c)
	}
	c, err = FromEnv(env(map[string]string{
		"DRIPFLOW_HTTP_READ_TIMEOUT": "30s", "DRIPFLOW_HTTP_IDLE_TIMEOUT": "5s", "DRIPFLOW_MAX_EVENT_STREAMS": "10",
		"DRIPFLOW_MAX_EVENT_STREAMS_PER_IDENTITY": "2", "DRIPFLOW_TRUSTED_PROXIES": "10.0.0.0/8", "DRIPFLOW_PROXY_SECRET": "s3cret",
		"DRIPFLOW_PROXY_ROLE_HEADER": "X-Forwarded-Groups",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPReadTimeout != 30*time.Second || c.HTTPIdleTimeout != 5*time.Second || c.MaxEventStreams != 10 || c.MaxEventStreamsPerIdentity != 2 || c.TrustedProxies != "10.0.0.0/8" || c.ProxySecret != "s3cret" || c.ProxyRoleHeader != "X-Forwarded-Groups" {
		t.Fatalf("config %+v", c)
	}
	for name, value := range map[string]string{
		"DRIPFLOW_HTTP_READ_TIMEOUT": "0s", "DRIPFLOW_HTTP_IDLE_TIMEOUT": "forever", "DRIPFLOW_MAX_EVENT_STREAMS": "0", "DRIPFLOW_MAX_EVENT_STREAMS_PER_IDENTITY": "x",
	} {
		if _, err := FromEnv(env(map[string]string{name: value})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v should name the variable", name, value, err)
		}
	}
}

func TestParseConnections(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"replica=mysql://ro:pw@replica:3306/app, warehouse=postgres://dw@dw:5432/dw",
			map[string]string{"replica": "mysql://ro:pw@replica:3306/app", "warehouse": "postgres://dw@dw:5432/dw"}, ""},
		// A comma inside a URL (several PostgreSQL hosts) stays in it.
		{"pg=postgres://h1,h2/db?sslmode=disable,bus=nats://a:4222",
			map[string]string{"pg": "postgres://h1,h2/db?sslmode=disable", "bus": "nats://a:4222"}, ""},
		{"a=redis://x:6379/1\nb=amqp://g:g@r:5672/", map[string]string{"a": "redis://x:6379/1", "b": "amqp://g:g@r:5672/"}, ""},
		{"garbage", nil, `entry "garbage" is not name=url`},
		{"a=redis://x,a=redis://y", nil, `connection "a" is named twice`},
		{"default=postgres://x/y", nil, `connection "default" is DRIPFLOW_DATABASE_URL`},
	} {
		got, err := ParseConnections(tc.raw)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseConnections(%q) = %v, %v; want an error saying %q", tc.raw, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseConnections(%q) = %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
	c := Config{DatabaseURL: "postgres://app", RedisURL: "redis://q", Connections: map[string]string{"redis": "redis://other"}}
	if got := c.ConnectionURLs(); !reflect.DeepEqual(got, map[string]string{"default": "postgres://app", "redis": "redis://other"}) {
		t.Errorf("ConnectionURLs = %v: default is the database, a named redis wins over the queue's", got)
	}
}

func TestFlowsDir(t *testing.T) {
	dir := t.TempDir()
	c, err := FromEnv(env(map[string]string{"DRIPFLOW_FLOWS_DIR": dir, "DRIPFLOW_FLOWS_DIR_INTERVAL": "500ms"}))
	if err != nil || c.FlowsDir != dir || c.FlowsDirInterval != 500*time.Millisecond {
		t.Fatalf("FromEnv: %+v, %v", c, err)
	}
	if c, _ := FromEnv(env(nil)); c.FlowsDir != "" || c.FlowsDirInterval != 3*time.Second {
		t.Errorf("defaults: dir %q, interval %s; want none and 3s", c.FlowsDir, c.FlowsDirInterval)
	}
	file := dir + "/flow.yaml"
	if err := os.WriteFile(file, []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ value, interval, want string }{
		{dir + "/missing", "", "DRIPFLOW_FLOWS_DIR"},
		{file, "", "must be a directory"},
		{dir, "never", "DRIPFLOW_FLOWS_DIR_INTERVAL"},
		{dir, "-1s", "DRIPFLOW_FLOWS_DIR_INTERVAL"},
	} {
		_, err := FromEnv(env(map[string]string{"DRIPFLOW_FLOWS_DIR": tc.value, "DRIPFLOW_FLOWS_DIR_INTERVAL": tc.interval}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("FLOWS_DIR=%s INTERVAL=%s: error %v, want one saying %q", tc.value, tc.interval, err, tc.want)
		}
	}
}

func TestHealthInterval(t *testing.T) {
	if c, err := FromEnv(env(nil)); err != nil || c.HealthInterval != 5*time.Second {
		t.Fatalf("default: %s, %v; want 5s", c.HealthInterval, err)
	}
	if c, err := FromEnv(env(map[string]string{"DRIPFLOW_HEALTH_INTERVAL": "750ms"})); err != nil || c.HealthInterval != 750*time.Millisecond {
		t.Fatalf("750ms: %s, %v", c.HealthInterval, err)
	}
	for _, v := range []string{"soon", "0s", "-1s", "10ms", "2h"} {
		_, err := FromEnv(env(map[string]string{"DRIPFLOW_HEALTH_INTERVAL": v}))
		if err == nil || !strings.Contains(err.Error(), "DRIPFLOW_HEALTH_INTERVAL") {
			t.Errorf("DRIPFLOW_HEALTH_INTERVAL=%s: error %v, want one naming the variable", v, err)
		}
	}
}
