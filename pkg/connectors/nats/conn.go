package nats

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "nats"

// DefaultConnection is the connection a config without one uses.
const DefaultConnection = "nats"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "NATS JetStream: read a stream's messages by sequence (optionally advancing a durable consumer), publish with Nats-Msg-Id deduplication",
		Delivery:    "idempotent within the stream's duplicate window (Nats-Msg-Id)",
		Source:      func() flows.SourceConfig { return &Source{} },
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// jsConn is a process's connection to one named NATS server.
type jsConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connect returns the process's JetStream connection for the named
// connection, opened on first use and shared.
func connect(res *engine.Resources, name string) (*jsConn, error) {
	if name == "" {
		name = DefaultConnection
	}
	raw, err := res.URL(name)
	if err != nil {
		return nil, err
	}
	v, err := res.Shared("nats:"+name, func() (any, func() error, error) {
		nc, err := nats.Connect(raw, nats.Name("dripflow"), nats.MaxReconnects(-1), nats.Timeout(10*time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS %q: %s", name, strings.ReplaceAll(err.Error(), raw, "<url>"))
		}
		// Sinks of many concurrent batches share the connection's window
		// of unacknowledged publishes; a full window makes a publish wait
		// (WithStallWait in the sink), never fail at once.
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(time.Minute))
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("JetStream on %q: %w", name, err)
		}
		return &jsConn{nc: nc, js: js}, func() error { return nc.Drain() }, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*jsConn), nil
}

// parsePosition turns a position into a stream sequence ("" is 0, before
// the first message).
func parsePosition(p string) (uint64, error) {
	if p == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q is not a stream sequence", p)
	}
	return n, nil
}

// validName reports whether s can be a stream or consumer name.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n.*>/\\")
}

// validSubject reports whether s is a subject (wildcards allowed when
// wild).
func validSubject(s string, wild bool) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return false
		case tok == "*" || tok == ">":
			if !wild {
				return false
			}
		case strings.ContainsAny(tok, "*>"):
			return false
		}
	}
	return !strings.Contains(s, ">") || strings.HasSuffix(s, ">")
}

// within bounds ctx for a call to the server.
func within(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}
