package nats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/flows"
)

// Decodings of a message payload.
const (
	// DecodeJSON makes a record of a payload that is a JSON object (any
	// other payload is a string under "data").
	DecodeJSON = "json"
	// DecodeRaw puts the payload, as a string, under "data".
	DecodeRaw = "raw"
)

// Source is the configuration of a source that reads a JetStream stream.
type Source struct {
	// Connection names a nats:// connection (DRIPFLOW_CONNECTIONS);
	// default "nats".
	Connection string `json:"connection,omitempty" help:"named nats:// connection; default nats"`
	// Stream is the JetStream stream to read.
	Stream string `json:"stream" help:"JetStream stream to read"`
	// Subject filters the stream's messages (wildcards allowed); empty
	// reads them all.
	Subject string `json:"subject,omitempty" help:"subject filter, wildcards allowed; default every message of the stream"`
	// Durable, when set, is a durable consumer acknowledged up to each
	// batch's last message once its checkpoint committed.
	Durable string `json:"durable,omitempty" help:"durable consumer to advance as batches commit (created if missing)"`
	// Decode is how a payload becomes a record: "json" (default) or "raw".
	Decode string `json:"decode,omitempty" help:"json (a JSON object's fields, the default) or raw (the payload under data)"`
}

var _ flows.SourceConfig = (*Source)(nil)

// Kind implements flows.SourceConfig.
func (s *Source) Kind() string { return Kind }

// Validate implements flows.SourceConfig.
func (s *Source) Validate() error {
	switch {
	case s.Stream == "":
		return flows.Errorf("stream", "is required")
	case !validName(s.Stream):
		return flows.Errorf("stream", "%q is not a stream name (no spaces, dots, wildcards or slashes)", s.Stream)
	case s.Subject != "" && !validSubject(s.Subject, true):
		return flows.Errorf("subject", "%q is not a subject filter", s.Subject)
	case s.Durable != "" && !validName(s.Durable):
		return flows.Errorf("durable", "%q is not a consumer name (no spaces, dots, wildcards or slashes)", s.Durable)
	case s.Decode != "" && s.Decode != DecodeJSON && s.Decode != DecodeRaw:
		return flows.Errorf("decode", "must be %q or %q, got %q", DecodeJSON, DecodeRaw, s.Decode)
	}
	return nil
}

// Build implements flows.SourceConfig: it connects and, with a Durable,
// creates or updates the durable consumer.
func (s *Source) Build(ctx context.Context, res *engine.Resources) (flows.Source, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c, err := connect(res, s.Connection)
	if err != nil {
		return nil, err
	}
	src := &source{cfg: *s, js: c.js}
	if s.Durable != "" {
		cctx, cancel := within(ctx)
		defer cancel()
		src.durable, err = c.js.CreateOrUpdateConsumer(cctx, s.Stream, jetstream.ConsumerConfig{
			Durable:       s.Durable,
			Description:   "dripflow: acknowledged up to each committed batch",
			FilterSubject: s.Subject,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       time.Minute,
			MaxAckPending: -1,
			HeadersOnly:   true,
		})
		if err != nil {
			return nil, fmt.Errorf("durable consumer %s on stream %s: %w", s.Durable, s.Stream, err)
		}
	}
	return src, nil
}

// source is a built Source.
type source struct {
	cfg     Source
	js      jetstream.JetStream
	durable jetstream.Consumer
	ackMu   sync.Mutex
}

var (
	_ flows.Source = (*source)(nil)
	_ flows.Acker  = (*source)(nil)
)

func (s *source) Shape() flows.Shape { return flows.Offset }
func (s *source) Resumes() bool      { return true }
func (s *source) Close() error       { return nil }

// fetchChunk bounds one pull request.
const fetchChunk = 256

// scan visits the messages matching the filter after sequence lo, in order,
// through an ephemeral consumer, until visit returns false or none is left.
func (s *source) scan(ctx context.Context, lo uint64, headersOnly bool, visit func(seq uint64, m jetstream.Msg) bool) error {
	cctx, cancel := within(ctx)
	defer cancel()
	cons, err := s.js.CreateConsumer(cctx, s.cfg.Stream, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       lo + 1,
		FilterSubject:     s.cfg.Subject,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       headersOnly,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("consumer on stream %s from %d: %w", s.cfg.Stream, lo+1, err)
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := within(context.WithoutCancel(ctx))
		defer cancel()
		_ = s.js.DeleteConsumer(dctx, s.cfg.Stream, info.Name)
	}()
	pending := info.NumPending
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.Fetch(int(min(pending, fetchChunk)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("fetch from stream %s: %w", s.cfg.Stream, err)
		}
		got, more := 0, true
		for m := range batch.Messages() {
			got++
			if !more {
				continue
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("message metadata: %w", err)
			}
			pending = md.NumPending
			more = visit(md.Sequence.Stream, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("fetch from stream %s: %w", s.cfg.Stream, err)
		}
		if !more || got == 0 {
			return nil
		}
	}
	return nil
}

// Next implements flows.Source: the sequence of the size-th message after
// lo that matches the filter (or of the last one).
func (s *source) Next(ctx context.Context, lo string, size int) (flows.Split, error) {
	from, err := parsePosition(lo)
	if err != nil {
		return flows.Split{}, err
	}
	if size < 1 {
		return flows.Split{}, fmt.Errorf("batch size %d: must be positive", size)
	}
	var seqs []uint64
	err = s.scan(ctx, from, true, func(seq uint64, _ jetstream.Msg) bool {
		seqs = append(seqs, seq)
		return len(seqs) <= size
	})
	if err != nil || len(seqs) == 0 {
		return flows.Split{}, err
	}
	if len(seqs) > size {
		return flows.Split{Hi: strconv.FormatUint(seqs[size-1], 10)}, nil
	}
	return flows.Split{Hi: strconv.FormatUint(seqs[len(seqs)-1], 10), Last: true}, nil
}

// Read implements flows.Source: the messages in (lo, hi] that match the
// filter.
func (s *source) Read(ctx context.Context, lo, hi string) ([]flows.Record, error) {
	from, err := parsePosition(lo)
	if err != nil {
		return nil, err
	}
	to, err := parsePosition(hi)
	if err != nil || to <= from {
		return nil, err
	}
	var out []flows.Record
	var decodeErr error
	err = s.scan(ctx, from, false, func(seq uint64, m jetstream.Msg) bool {
		if seq > to {
			return false
		}
		r, err := s.record(seq, m)
		if err != nil {
			decodeErr = err
			return false
		}
		out = append(out, r)
		return seq < to
	})
	if err == nil {
		err = decodeErr
	}
	return out, err
}

// record makes a message a record.
func (s *source) record(seq uint64, m jetstream.Msg) (flows.Record, error) {
	r := flows.Record{}
	data := m.Data()
	if s.cfg.Decode != DecodeRaw && len(bytes.TrimSpace(data)) > 0 && bytes.TrimSpace(data)[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("message %d on %s: payload is not JSON: %w", seq, m.Subject(), err)
		}
		for k, v := range obj {
			r[k] = flows.Numbers(v)
		}
	} else {
		r["data"] = string(data)
	}
	r["_seq"] = int64(seq)
	r["_subject"] = m.Subject()
	return r, nil
}

// Ack implements flows.Acker: it acknowledges the durable consumer up to
// the batch's last message (ack policy all), never back.
func (s *source) Ack(ctx context.Context, lo, hi string) error {
	if s.durable == nil || hi == "" {
		return nil
	}
	to, err := parsePosition(hi)
	if err != nil {
		return err
	}
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	cctx, cancel := within(ctx)
	defer cancel()
	info, err := s.durable.Info(cctx)
	if err != nil {
		return fmt.Errorf("durable %s: %w", s.cfg.Durable, err)
	}
	if info.AckFloor.Stream >= to {
		return nil
	}
	for {
		batch, err := s.durable.FetchNoWait(fetchChunk)
		if err != nil {
			return fmt.Errorf("fetch from durable %s: %w", s.cfg.Durable, err)
		}
		var best jetstream.Msg
		got, reached := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream <= to {
				best = m
				reached = reached || md.Sequence.Stream == to
				continue
			}
			// A later batch's message: give it back at once.
			reached = true
			_ = m.Nak()
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch from durable %s: %w", s.cfg.Durable, err)
		}
		if best != nil {
			if err := best.DoubleAck(cctx); err != nil {
				return fmt.Errorf("acknowledge durable %s up to %d: %w", s.cfg.Durable, to, err)
			}
		}
		if reached || got == 0 {
			return nil
		}
	}
}
