package amqp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Kind is the connector's registered kind name.
const Kind = "amqp"

// DefaultConnection is the connection a config without one uses.
const DefaultConnection = "amqp"

func init() {
	flows.RegisterConnector(flows.Connector{
		Kind:        Kind,
		Description: "RabbitMQ: read stream queues by offset, publish with publisher confirms and message ids",
		Delivery:    "at least once: RabbitMQ does not deduplicate; every message carries its message_id so consumers can",
		Source:      func() flows.SourceConfig { return &Source{} },
		Sink:        func() flows.SinkConfig { return &Sink{} },
	})
}

// broker is a process's connection to one named RabbitMQ, dialled again
// when the broker closed it.
type broker struct {
	name, url string
	mu        sync.Mutex
	conn      *amqp.Connection
}

// channel opens a channel, reconnecting first when the connection is gone.
func (b *broker) channel() (*amqp.Channel, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil || b.conn.IsClosed() {
		c, err := amqp.DialConfig(b.url, amqp.Config{Properties: amqp.Table{"connection_name": "dripflow"}})
		if err != nil {
			return nil, fmt.Errorf("connect to RabbitMQ %q: %s", b.name, strings.ReplaceAll(err.Error(), b.url, "<url>"))
		}
		b.conn = c
	}
	ch, err := b.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open a channel on %q: %w", b.name, err)
	}
	return ch, nil
}

func (b *broker) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil || b.conn.IsClosed() {
		return nil
	}
	return b.conn.Close()
}

// connect returns the process's broker for the named connection, dialled
// on first use and shared.
func connect(res *engine.Resources, name string) (*broker, error) {
	if name == "" {
		name = DefaultConnection
	}
	raw, err := res.URL(name)
	if err != nil {
		return nil, err
	}
	v, err := res.Shared("amqp:"+name, func() (any, func() error, error) {
		b := &broker{name: name, url: raw}
		ch, err := b.channel()
		if err != nil {
			return nil, nil, err
		}
		ch.Close()
		return b, b.close, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*broker), nil
}

// parsePosition turns a position into the offset after it ("" is before
// offset 0).
func parsePosition(p string) (int64, error) {
	if p == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("position %q is not a stream offset", p)
	}
	return n, nil
}

// decodeObject decodes a JSON object body, or reports false.
func decodeObject(body []byte) (map[string]any, bool) {
	t := bytes.TrimSpace(body)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, false
	}
	for k, v := range obj {
		obj[k] = flows.Numbers(v)
	}
	return obj, true
}
