package amqp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Decodings of a message body.
const (
	// DecodeJSON makes a record of a body that is a JSON object (any other
	// body is a string under "data").
	DecodeJSON = "json"
	// DecodeRaw puts the body, as a string, under "data".
	DecodeRaw = "raw"
)

// DefaultWait is how long planning waits for the next message of a stream
// before it takes the stream's end for now.
const DefaultWait = 300 * time.Millisecond

// readWait is how long a worker waits for a message it knows exists.
const readWait = 15 * time.Second

// Source is the configuration of a source that reads a RabbitMQ stream
// queue by offset.
type Source struct {
	// Connection names an amqp:// connection (DRIPFLOW_CONNECTIONS);
	// default "amqp".
	Connection string `json:"connection,omitempty" help:"named amqp:// connection; default amqp"`
	// Queue is the stream queue to read.
	Queue string `json:"queue" help:"stream queue (x-queue-type=stream) to read"`
	// Declare declares the queue as a durable stream queue when the source
	// is built (creating it when missing).
	Declare bool `json:"declare,omitempty" help:"declare the queue as a durable stream queue (created if missing)"`
	// Wait is how long planning waits for one more message before it takes
	// the stream's end for now, as a Go duration; default 300ms.
	Wait string `json:"wait,omitempty" help:"how long planning waits for one more message, e.g. 300ms (default)"`
	// Decode is how a body becomes a record: "json" (default) or "raw".
	Decode string `json:"decode,omitempty" help:"json (a JSON object's fields, the default) or raw (the body under data)"`
}

var _ flows.SourceConfig = (*Source)(nil)

// Kind implements flows.SourceConfig.
func (s *Source) Kind() string { return Kind }

// Validate implements flows.SourceConfig.
func (s *Source) Validate() error {
	switch {
	case s.Queue == "":
		return flows.Errorf("queue", "is required")
	case len(s.Queue) > 255:
		return flows.Errorf("queue", "is longer than 255 bytes")
	case s.Decode != "" && s.Decode != DecodeJSON && s.Decode != DecodeRaw:
		return flows.Errorf("decode", "must be %q or %q, got %q", DecodeJSON, DecodeRaw, s.Decode)
	}
	if s.Wait != "" {
		if d, err := time.ParseDuration(s.Wait); err != nil || d < time.Millisecond || d > time.Minute {
			return flows.Errorf("wait", "must be a duration between 1ms and 1m such as 300ms, got %q", s.Wait)
		}
	}
	return nil
}

// Build implements flows.SourceConfig: it connects and, with Declare,
// declares the stream queue.
func (s *Source) Build(ctx context.Context, res *engine.Resources) (flows.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := connect(res, s.Connection)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: *s, broker: b, wait: DefaultWait}
	if s.Wait != "" {
		src.wait, _ = time.ParseDuration(s.Wait)
	}
	if s.Declare {
		ch, err := b.channel()
		if err != nil {
			return nil, err
		}
		defer ch.Close()
		if _, err := ch.QueueDeclare(s.Queue, true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
			return nil, fmt.Errorf("declare stream queue %s: %w", s.Queue, err)
		}
	}
	return src, nil
}

// source is a built Source.
type source struct {
	cfg    Source
	broker *broker
	wait   time.Duration
}

var _ flows.Source = (*source)(nil)

func (s *source) Shape() flows.Shape { return flows.Offset }
func (s *source) Resumes() bool      { return true }
func (s *source) Close() error       { return nil }

// errNotStream is returned for a queue whose deliveries carry no stream
// offset.
var errNotStream = errors.New("is not a stream queue (x-queue-type=stream); reading a classic or quorum queue would consume it")

// consume delivers the stream's messages from offset after+1 to visit, in
// offset order, until visit returns false or no message came for wait
// (then idle is true). Deliveries are acknowledged, which for a stream only
// lets more flow, and only once they prove to come from a stream: a classic
// queue's messages go back to it untouched when the channel closes.
func (s *source) consume(ctx context.Context, after int64, prefetch int, wait time.Duration, visit func(off int64, d amqp.Delivery) bool) (idle bool, err error) {
	ch, err := s.broker.channel()
	if err != nil {
		return false, err
	}
	defer ch.Close()
	if err := ch.Qos(min(prefetch, 1000), 0, false); err != nil {
		return false, fmt.Errorf("set prefetch on %s: %w", s.cfg.Queue, err)
	}
	var start any = "first"
	if after >= 0 {
		start = after + 1
	}
	deliveries, err := ch.ConsumeWithContext(ctx, s.cfg.Queue, "", false, false, false, false, amqp.Table{"x-stream-offset": start})
	if err != nil {
		if strings.Contains(err.Error(), "invalid arg 'x-stream-offset'") {
			return false, fmt.Errorf("queue %s %w", s.cfg.Queue, errNotStream)
		}
		return false, fmt.Errorf("consume stream %s from %v: %w", s.cfg.Queue, start, err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return false, fmt.Errorf("consume stream %s: the broker closed the consumer", s.cfg.Queue)
			}
			off, ok := offsetOf(d)
			if !ok {
				return false, fmt.Errorf("queue %s %w", s.cfg.Queue, errNotStream)
			}
			if err := d.Ack(false); err != nil {
				return false, fmt.Errorf("acknowledge stream delivery %d: %w", off, err)
			}
			if !visit(off, d) {
				return false, nil
			}
			if !timer.Stop() {
				<-timer.C
			}
			timer.Reset(wait)
		case <-timer.C:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func offsetOf(d amqp.Delivery) (int64, bool) {
	switch v := d.Headers["x-stream-offset"].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	}
	return 0, false
}

// Next implements flows.Source: the offset of the size-th message after
// lo, or of the last one to arrive before the stream stayed quiet for Wait.
func (s *source) Next(ctx context.Context, lo string, size int) (flows.Split, error) {
	after, err := parsePosition(lo)
	if err != nil {
		return flows.Split{}, err
	}
	if size < 1 {
		return flows.Split{}, fmt.Errorf("batch size %d: must be positive", size)
	}
	var offs []int64
	_, err = s.consume(ctx, after, size+1, s.wait, func(off int64, _ amqp.Delivery) bool {
		if off <= after {
			// A stream consumer starts at the chunk holding the offset:
			// earlier messages of that chunk are not ours.
			return true
		}
		offs = append(offs, off)
		return len(offs) <= size
	})
	if err != nil || len(offs) == 0 {
		return flows.Split{}, err
	}
	if len(offs) > size {
		return flows.Split{Hi: strconv.FormatInt(offs[size-1], 10)}, nil
	}
	return flows.Split{Hi: strconv.FormatInt(offs[len(offs)-1], 10), Last: true}, nil
}

// Read implements flows.Source: the messages at offsets (lo, hi].
func (s *source) Read(ctx context.Context, lo, hi string) ([]flows.Record, error) {
	after, err := parsePosition(lo)
	if err != nil {
		return nil, err
	}
	to, err := parsePosition(hi)
	if err != nil || hi == "" || to <= after {
		return nil, err
	}
	var out []flows.Record
	reached := false
	idle, err := s.consume(ctx, after, int(to-after)+1, readWait, func(off int64, d amqp.Delivery) bool {
		if off <= after {
			return true
		}
		if off > to {
			reached = true
			return false
		}
		out = append(out, s.record(off, d))
		reached = off == to
		return !reached
	})
	if err != nil {
		return nil, err
	}
	if idle && !reached {
		return nil, fmt.Errorf("read stream %s (%s, %s]: no message at offset %s after %s", s.cfg.Queue, lo, hi, hi, readWait)
	}
	return out, nil
}

// record makes a delivery a record.
func (s *source) record(off int64, d amqp.Delivery) flows.Record {
	r := flows.Record{}
	if obj, ok := decodeObject(d.Body); ok && s.cfg.Decode != DecodeRaw {
		for k, v := range obj {
			r[k] = v
		}
	} else {
		r["data"] = string(d.Body)
	}
	r["_offset"] = off
	if d.MessageId != "" {
		r["_message_id"] = d.MessageId
	}
	return r
}
