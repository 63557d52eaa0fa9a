package redisurl_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/dripflow/dripflow/internal/redisurl"
)

func TestParseSentinel(t *testing.T) {
	tests := []struct {
		url  string
		want redis.FailoverOptions
	}{
		{"redis-sentinel://s1:26379,s2:26380,s3/mymaster",
			redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26380", "s3:26379"}}},
		{"redis-sentinel://:secret@s1,s2/mymaster/3?sentinel_password=spw",
			redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26379"}, Password: "secret", SentinelPassword: "spw", DB: 3}},
		{"redis-sentinel://app:pw@10.0.0.1:5000/m?db=2&sentinel_username=su&sentinel_password=sp&dial_timeout=3s",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"10.0.0.1:5000"}, Username: "app", Password: "pw", SentinelUsername: "su", SentinelPassword: "sp", DB: 2, DialTimeout: 3 * time.Second}},
		// asynq's form: the master as an option, the database as the path.
		{"redis-sentinel://s1:26379/4?master=mm",
			redis.FailoverOptions{MasterName: "mm", SentinelAddrs: []string{"s1:26379"}, DB: 4}},
		{"redis-sentinel://[::1]:26379,[::1]:26380/m",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"[::1]:26379", "[::1]:26380"}}},
	}
	for _, tt := range tests {
		o, err := redisurl.Parse(tt.url)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.url, err)
			continue
		}
		if o.Kind != redisurl.Sentinel || o.Failover == nil {
			t.Errorf("Parse(%q): kind %s", tt.url, o.Kind)
			continue
		}
		got := *o.Failover
		pick := redis.FailoverOptions{MasterName: got.MasterName, SentinelAddrs: got.SentinelAddrs, Username: got.Username, Password: got.Password,
			SentinelUsername: got.SentinelUsername, SentinelPassword: got.SentinelPassword, DB: got.DB, DialTimeout: got.DialTimeout}
		if diff := cmp.Diff(tt.want, pick); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.url, diff)
		}
		if c, ok := o.NewClient().(*redis.Client); !ok {
			t.Errorf("Parse(%q).NewClient() is %T, want *redis.Client (a failover client)", tt.url, c)
		} else {
			c.Close()
		}
	}
}

func TestParseCluster(t *testing.T) {
	o, err := redisurl.Parse("redis-cluster://:pw@n1:7000,n2:7001,n3?read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != redisurl.Cluster {
		t.Fatalf("kind %s", o.Kind)
	}
	if diff := cmp.Diff([]string{"n1:7000", "n2:7001", "n3:6379"}, o.ClusterOpts.Addrs); diff != "" {
		t.Errorf("addrs (-want +got):\n%s", diff)
	}
	if o.ClusterOpts.Password != "pw" || o.ClusterOpts.ReadTimeout != 2*time.Second {
		t.Errorf("password %q read timeout %s", o.ClusterOpts.Password, o.ClusterOpts.ReadTimeout)
	}
	c := o.NewClient()
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("NewClient() is %T, want *redis.ClusterClient", c)
	}
	if _, err := o.WithDB(1); err == nil {
		t.Error("WithDB(1) on a cluster: no error")
	}
}

func TestParseStandaloneIsGoRedis(t *testing.T) {
	o, err := redisurl.Parse("redis://u:p@127.0.0.1:6380/5?pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != redisurl.Standalone || o.Single.Addr != "127.0.0.1:6380" || o.Single.DB != 5 || o.Single.PoolSize != 7 || o.Single.Password != "p" {
		t.Fatalf("got %s %+v", o.Kind, o.Single)
	}
	if o.String() != "redis://u:xxxxx@127.0.0.1:6380/5?pool_size=7" {
		t.Errorf("String() = %q", o.String())
	}
	o2, err := o.WithDB(9)
	if err != nil || o2.DB() != 9 || o.DB() != 5 {
		t.Errorf("WithDB(9): %v, db %d (original %d)", err, o2.DB(), o.DB())
	}
}

// Bad URLs are refused with a reason, and the message never shows a
// password.
func TestParseRefusesBadURLsWithoutShowingPasswords(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "empty"},
		{"localhost:6379", "no scheme"},
		{"http://h", "unknown scheme"},
		{"redis-sentinel://:hunter2@s1,s2", "no master name"},
		{"redis-sentinel://:hunter2@s1,,s2/m", "empty host"},
		{"redis-sentinel://:hunter2@s1:notaport/m", "bad port"},
		{"redis-sentinel://:hunter2@s1:99999/m", "bad port"},
		{"redis-sentinel://:hunter2@s1/m/x", "not a number"},
		{"redis-sentinel://:hunter2@s1/m/1/2", "want /master[/db]"},
		{"redis-sentinel://:hunter2@s1/m/1?master=n", "master name given twice"},
		{"redis-sentinel://:hunter2@s1/m?master=n", "database \"m\" is not a number"},
		{"redis-sentinel://:hunter2@s1/m/1?db=2", "database given twice"},
		{"redis-sentinel://:hunter2@s1/m?bogus=1&sentinel_password=hunter3", "bogus"},
		{"redis-sentinel://:hunter2@s1/m?password=hunter2", "not allowed"},
		{"redis-sentinel://:hunter2@s1/m?addr=s2:1", "not allowed"},
		{"redis-cluster://:hunter2@n1,n2/3", "database 0 only"},
		{"redis-cluster://:hunter2@n1?db=1", "database 0 only"},
		{"redis-cluster://:hunter2@n1?sentinel_password=hunter3", "for redis-sentinel"},
		{"redis-cluster://:hunter2@n1?nope=1", "nope"},
		{"redis://:hunter2@h:6379/x", "invalid database"},
	}
	for _, tt := range tests {
		_, err := redisurl.Parse(tt.url)
		if err == nil {
			t.Errorf("Parse(%q): no error", tt.url)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %q, want it to say %q", tt.url, err, tt.want)
		}
		if strings.Contains(err.Error(), "hunter") {
			t.Errorf("Parse(%q) = %q shows a password", tt.url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://:pw@h:6379/0", "redis://:xxxxx@h:6379/0"},
		{"redis-sentinel://u:p@a,b/m?sentinel_password=s&db=1", "redis-sentinel://u:xxxxx@a,b/m?sentinel_password=xxxxx&db=1"},
		{"redis-cluster://u@a,b", "redis-cluster://u@a,b"},
		{"garbage:pw@x", "<unparsable URL>"},
	}
	for _, tt := range tests {
		if got := redisurl.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"redis://:pw@h:1/2", "redis-sentinel://:pw@a,b:2/m/1?sentinel_password=pw", "redis-cluster://:pw@a:1,b:2?read_timeout=1s",
		"redis-sentinel://a/m?master=m", "unix:///tmp/x.sock?db=1", "rediss-cluster://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := redisurl.Parse(raw)
		if err != nil {
			return
		}
		switch o.Kind {
		case redisurl.Standalone:
			if o.Single == nil {
				t.Fatal("standalone without options")
			}
		case redisurl.Sentinel:
			if o.Failover == nil || o.Failover.MasterName == "" || len(o.Failover.SentinelAddrs) == 0 {
				t.Fatalf("sentinel options %+v", o.Failover)
			}
		case redisurl.Cluster:
			if o.ClusterOpts == nil || len(o.ClusterOpts.Addrs) == 0 {
				t.Fatalf("cluster options %+v", o.ClusterOpts)
			}
		}
		_ = o.Where()
	})
}
