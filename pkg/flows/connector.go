package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
)

// Record is one record moving through a flow: field name to value.
type Record = map[string]any

// Shape says how a source's records are found.
type Shape string

const (
	// Keyed sources hold a set of records ordered by key (a table, a gorm
	// model and scope). The scheduler plans key ranges over it; a run reads
	// every record in scope as of planning, or, when the source Resumes,
	// every record after the flow's watermark.
	Keyed Shape = "keyed"
	// Offset sources are unbounded: records keep arriving at increasing
	// positions (a Redis stream, a JetStream subject, a queue, a growing
	// file). A run starts at the flow's committed offset and takes what has
	// arrived since, up to the flow's MaxBatchesPerRun.
	Offset Shape = "offset"
)

// Split is the next range a source offers after a position: (lo, Hi]. An
// empty Hi means nothing follows lo (now). Last is true when nothing
// followed Hi when the split was made, so the planner need not ask again.
type Split struct {
	Hi   string
	Last bool
}

// Source reads a flow's records. The scheduler enumerates splits (Next);
// any worker reads one (Read). Positions are opaque strings the source
// encodes ("" is the beginning) and Read must return the same records for
// the same range every time it is asked, so a retried batch reads what the
// failed attempt read.
//
// A Source is built once per process from its SourceConfig and shared by
// every run of the flow, so it must be safe for concurrent use.
type Source interface {
	// Shape says whether the source is keyed or offset-based.
	Shape() Shape
	// Resumes reports whether a run starts at the flow's watermark (its
	// last committed position) rather than at the beginning. Offset sources
	// always resume.
	Resumes() bool
	// Next returns the split after lo holding at most size records.
	Next(ctx context.Context, lo string, size int) (Split, error)
	// Read returns the records in (lo, hi], in position order.
	Read(ctx context.Context, lo, hi string) ([]Record, error)
	// Close releases what Build acquired that is the source's own.
	Close() error
}

// Counter is implemented by sources that can count what a full run reads;
// estimated is true when counting exactly would be too slow.
type Counter interface {
	Count(ctx context.Context) (n int64, estimated bool, err error)
}

// Acker is implemented by sources that must hear when a batch's checkpoint
// has committed: a consumer group acknowledges the batch's entries only
// then, so a crash before the checkpoint leaves them pending.
type Acker interface {
	Ack(ctx context.Context, lo, hi string) error
}

// Guarantee is what a sink promises about a batch delivered more than once
// (a retry after a crash between the write and the checkpoint).
type Guarantee string

const (
	// Transactional sinks write in the store's database inside the batch's
	// checkpoint transaction: the write and the checkpoint commit together,
	// exactly once. Only a TxSink whose DB is the store's can be.
	Transactional Guarantee = "transactional"
	// Idempotent sinks make a second delivery change nothing: upsert by
	// key, dedupe by message id. Effectively once.
	Idempotent Guarantee = "idempotent"
	// AtLeastOnce sinks may write a redelivered batch twice.
	AtLeastOnce Guarantee = "at-least-once"
)

// Batch is what a sink writes: one batch's records and where they came
// from. ID names the batch stably across its retries; sinks use it as an
// idempotency key.
type Batch struct {
	Flow    string
	Run     int64
	Seq     int64
	Lo, Hi  string
	Records []Record
}

// ID is "<flow>/<run>/<seq>", the same for every attempt of the batch.
func (b *Batch) ID() string { return fmt.Sprintf("%s/%d/%d", b.Flow, b.Run, b.Seq) }

// RecordID is the message id of the batch's i-th record: the record's
// field named field when it has one, else "<flow>/<run>/<seq>/<i>", which
// dedupes retries of this batch only.
func (b *Batch) RecordID(i int, field string) string {
	if field != "" {
		if v, ok := b.Records[i][field]; ok && v != nil {
			return fmt.Sprint(v)
		}
	}
	return fmt.Sprintf("%s/%d", b.ID(), i)
}

// Sink writes a flow's records. A Sink is built once per process from its
// SinkConfig and shared by every run, so it must be safe for concurrent use.
type Sink interface {
	// Guarantee is what the sink promises when it writes outside the
	// store's transaction.
	Guarantee() Guarantee
	// Write writes the batch and returns how many records it wrote.
	Write(ctx context.Context, b *Batch) (int64, error)
	// Close releases what Build acquired that is the sink's own.
	Close() error
}

// TxSink is a sink that writes to an SQL database and can write inside a
// caller's transaction there. When DB is the store's database, the worker
// calls WriteTx in the batch's checkpoint transaction: exactly once.
type TxSink interface {
	Sink
	// DB is the database the sink writes to.
	DB() *gorm.DB
	// WriteTx writes the batch in tx, a transaction on DB.
	WriteTx(ctx context.Context, tx *gorm.DB, b *Batch) (int64, error)
}

// SourceConfig is a source connector's configuration: a JSON-serialisable
// struct, validated when the flow is registered or created, and built into
// a live Source, with its resources, once per process that runs the flow.
type SourceConfig interface {
	// Kind is the connector's registered kind name ("sql", "redisstream").
	Kind() string
	// Validate checks the configuration without connecting anywhere; a
	// *FieldError names the failing field.
	Validate() error
	// Build connects the source.
	Build(ctx context.Context, res *engine.Resources) (Source, error)
}

// SinkConfig is a sink connector's configuration; see SourceConfig.
type SinkConfig interface {
	Kind() string
	Validate() error
	// Guarantee is what the built sink will promise outside the store's
	// transaction (shown next to the flow before anything is built).
	Guarantee() Guarantee
	Build(ctx context.Context, res *engine.Resources) (Sink, error)
}

// FieldError is a configuration error that names its field, as a JSON path
// ("source.table", "sink.key").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errorf returns a *FieldError for field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// prefixField puts prefix in front of a *FieldError's field, and wraps any
// other error as one for prefix.
func prefixField(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		f := prefix
		if fe.Field != "" {
			f = prefix + "." + strings.TrimPrefix(fe.Field, ".")
		}
		return &FieldError{Field: f, Message: fe.Message}
	}
	return &FieldError{Field: prefix, Message: err.Error()}
}

// Numbers turns the json.Numbers in v (decoded with UseNumber, recursively
// through slices and maps) into int64 when they are integers, else float64,
// so sinks get typed values. Connectors that decode JSON payloads use it.
func Numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		for i := range x {
			x[i] = Numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = Numbers(x[k])
		}
	}
	return v
}
