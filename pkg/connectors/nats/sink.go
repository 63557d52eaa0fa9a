package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// publishChunk is how many publishes one Write has in flight at once.
const publishChunk = 256

// Sink is the configuration of a sink that publishes records to JetStream.
type Sink struct {
	// Connection names a nats:// connection; default "nats".
	Connection string `json:"connection,omitempty" help:"named nats:// connection; default nats"`
	// Subject is where each record is published, as a JSON object; a
	// stream must capture it.
	Subject string `json:"subject" help:"subject to publish to (a stream must capture it)"`
	// Stream, when set, is the stream the subject must land in (publishes
	// captured by another stream fail).
	Stream string `json:"stream,omitempty" help:"expected stream; publishes stored elsewhere fail"`
	// IDField is the record field whose value is the Nats-Msg-Id; without
	// it (or when a record lacks it) the id is the record's place in its
	// batch, "<flow>/<run>/<seq>/<i>", which dedupes redeliveries of the
	// same batch only.
	IDField string `json:"id_field,omitempty" help:"record field holding the message id (Nats-Msg-Id); default the record's place in its batch"`
}

var _ flows.SinkConfig = (*Sink)(nil)

// Kind implements flows.SinkConfig.
func (s *Sink) Kind() string { return Kind }

// Guarantee implements flows.SinkConfig: idempotent within the stream's
// duplicate window.
func (s *Sink) Guarantee() flows.Guarantee { return flows.Idempotent }

// Validate implements flows.SinkConfig.
func (s *Sink) Validate() error {
	switch {
	case s.Subject == "":
		return flows.Errorf("subject", "is required")
	case !validSubject(s.Subject, false):
		return flows.Errorf("subject", "%q is not a subject one can publish to (no wildcards)", s.Subject)
	case s.Stream != "" && !validName(s.Stream):
		return flows.Errorf("stream", "%q is not a stream name", s.Stream)
	}
	return nil
}

// Build implements flows.SinkConfig.
func (s *Sink) Build(ctx context.Context, res *engine.Resources) (flows.Sink, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, err := connect(res, s.Connection)
	if err != nil {
		return nil, err
	}
	return &sink{cfg: *s, js: c.js}, nil
}

// sink is a built Sink.
type sink struct {
	cfg Sink
	js  jetstream.JetStream
}

var _ flows.Sink = (*sink)(nil)

func (s *sink) Guarantee() flows.Guarantee { return flows.Idempotent }
func (s *sink) Close() error               { return nil }

// Write implements flows.Sink: it publishes every record and waits for the
// acknowledgements; it returns how many JetStream stored (duplicates it
// dropped are not counted).
func (s *sink) Write(ctx context.Context, b *flows.Batch) (int64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(30 * time.Second)}
	if s.cfg.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(s.cfg.Stream))
	}
	var stored int64
	for from := 0; from < len(b.Records); from += publishChunk {
		to := min(from+publishChunk, len(b.Records))
		futures := make([]jetstream.PubAckFuture, 0, to-from)
		for i := from; i < to; i++ {
			data, err := json.Marshal(b.Records[i])
			if err != nil {
				return stored, fmt.Errorf("record %d: %w", i, err)
			}
			m := nats.NewMsg(s.cfg.Subject)
			m.Data = data
			m.Header.Set(jetstream.MsgIDHeader, b.RecordID(i, s.cfg.IDField))
			f, err := s.js.PublishMsgAsync(m, opts...)
			if err != nil {
				return stored, fmt.Errorf("publish record %d to %s: %w", i, s.cfg.Subject, err)
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if !ack.Duplicate {
					stored++
				}
			case err := <-f.Err():
				return stored, fmt.Errorf("publish record %d to %s: %w", from+i, s.cfg.Subject, err)
			case <-ctx.Done():
				return stored, fmt.Errorf("wait for publish acknowledgements: %w", ctx.Err())
			}
		}
	}
	return stored, nil
}
