package testenv

import (
	"net"
	"net/url"
	"testing"
	"time"
)

// Default broker URLs, matching the local services of a development machine.
const (
	DefaultNATSURL = "nats://127.0.0.1:4222"
	DefaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/"
)

// NATSURL returns the URL of the test NATS server (JetStream enabled) after
// checking that it accepts connections. Tests isolate themselves by naming
// their streams and subjects with Name.
func NATSURL(t testing.TB) string {
	t.Helper()
	raw := env("DRIPFLOW_TEST_NATS_URL", DefaultNATSURL)
	dialable(t, "NATS", raw, "4222")
	return raw
}

// AMQPURL returns the URL of the test RabbitMQ after checking that it
// accepts connections. Tests isolate themselves by naming their queues with
// Name.
func AMQPURL(t testing.TB) string {
	t.Helper()
	raw := env("DRIPFLOW_TEST_AMQP_URL", DefaultAMQPURL)
	dialable(t, "RabbitMQ", raw, "5672")
	return raw
}

// dialable skips the test (fails it in CI) unless the URL's host answers a
// TCP connect.
func dialable(t testing.TB, service, raw, defPort string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s test URL %q is not a URL: %v", service, raw, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defPort)
	}
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		unavailable(t, service, err)
		return
	}
	c.Close()
}
