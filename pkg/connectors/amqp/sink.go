package amqp

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// publishChunk is how many unconfirmed messages a Sink has at once.
const publishChunk = 1000

// Sink is the configuration of a sink that publishes records to RabbitMQ
// with publisher confirms.
type Sink struct {
	// Connection names an amqp:// connection; default "amqp".
	Connection string `json:"connection,omitempty" help:"named amqp:// connection; default amqp"`
	// Exchange is the exchange to publish to; empty is the default
	// exchange, where the routing key is a queue's name.
	Exchange string `json:"exchange,omitempty" help:"exchange to publish to; empty is the default exchange (routing key = queue)"`
	// RoutingKey is every message's routing key.
	RoutingKey string `json:"routing_key,omitempty" help:"routing key; required on the default exchange, where it is the queue's name"`
	// IDField is the record field whose value is the message-id property;
	// without it (or when a record lacks it) the id is the record's place
	// in its batch, "<flow>/<run>/<seq>/<i>".
	IDField string `json:"id_field,omitempty" help:"record field holding the message-id; default the record's place in its batch"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Guarantee implements flows.SinkConfig: RabbitMQ does not deduplicate, so
// a retried batch may publish twice; consumers dedupe on message-id.
func (s *Sink) Guarantee() flows.Guarantee { return flows.AtLeastOnce }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	switch {
	case s.RoutingKey == "" && s.Exchange == "":
		return flows.Errorf("routing_key", "is required on the default exchange (the queue's name)")
	case len(s.RoutingKey) > 255:
		return flows.Errorf("routing_key", "is longer than 255 bytes")
	case len(s.Exchange) > 255:
		return flows.Errorf("exchange", "is longer than 255 bytes")
	}
	return nil
}

// Build implements flows.SinkConfig.
func (s *Sink) Build(ctx context.Context, res *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := connect(res, s.Connection)
	if err != nil {
		return nil, err
	}
	return &sink{cfg: *s, broker: b}, nil
}

// sink is a built Sink.
type sink struct {
	cfg    Sink
	broker *broker
}

var _ flows.Sink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return flows.AtLeastOnce }
func (s *sink) Close() error               { return nil }

// Write implements flows.Sink: it publishes every record, mandatory, on a
// channel in confirm mode of its own and returns once the broker confirmed
// them all; a message the broker nacks or cannot route fails the batch.
func (s *sink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	if len(b.Records) == 0 {
		return 0, nil
	}
	ch, err := s.broker.channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return 0, fmt.Errorf("confirm mode: %w", err)
	}
	// Returns come before the confirm of the message they return.
	returns := ch.NotifyReturn(make(chan amqp.Return, publishChunk))
	now := time.Now()
	var written int64
	for from := 0; from < len(b.Records); from += publishChunk {
		to := min(from+publishChunk, len(b.Records))
		confirms := make([]*amqp.DeferredConfirmation, 0, to-from)
		for i := from; i < to; i++ {
			body, err := json.Marshal(b.Records[i])
			if err != nil {
				return written, fmt.Errorf("record %d: %w", i, err)
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange, s.cfg.RoutingKey, true, false, amqp.Publishing{
				ContentType:  "application/json",
				DeliveryMode: amqp.Persistent,
				MessageId:    b.RecordID(i, s.cfg.IDField),
				Timestamp:    now,
				AppId:        "dripflow",
				Body:         body,
			})
			if err != nil {
				return written, fmt.Errorf("publish record %d to %q %q: %w", i, s.cfg.Exchange, s.cfg.RoutingKey, err)
			}
			confirms = append(confirms, dc)
		}
		for i, dc := range confirms {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return written, fmt.Errorf("wait for the confirm of record %d: %w", from+i, err)
			}
			if !ok {
				return written, fmt.Errorf("the broker refused record %d (nack)", from+i)
			}
		}
		select {
		case r := <-returns:
			return written, fmt.Errorf("record with message-id %s was returned unroutable by exchange %q, routing key %q: %s", r.MessageId, r.Exchange, r.RoutingKey, r.ReplyText)
		default:
		}
		written += int64(to - from)
	}
	return written, nil
}
