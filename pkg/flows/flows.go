package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// Record is one record moving through a flow: column name to value.
type Record = map[string]any

// Source reads records by key range.
type Source interface {
	// Connector names the source's connector (as registered).
	Connector() string
	// Incremental reports whether runs start at the flow's watermark.
	Incremental() bool
	// Next returns the upper bound of the batch of at most size records
	// after lo; ok false when nothing follows.
	Next(ctx context.Context, db *gorm.DB, lo string, size int) (hi string, more, ok bool, err error)
	// Count counts the records a full run would read.
	Count(ctx context.Context, db *gorm.DB) (n int64, estimated bool, err error)
	// Read returns the records in (lo, hi], in key order.
	Read(ctx context.Context, db *gorm.DB, lo, hi string) ([]Record, error)
}

// Sink writes records. Sinks must be idempotent (upsert by key) unless they
// write to the store's database, where the write commits with the batch's
// checkpoint.
type Sink interface {
	Connector() string
	// Write writes the records in db (a transaction) and returns how many
	// rows it wrote.
	Write(ctx context.Context, db *gorm.DB, records []Record) (int64, error)
}

// Transform turns one record into zero (filtered out), one or many.
type Transform struct {
	Name string
	Fn   func(ctx context.Context, r Record) ([]Record, error)
}

// Map transforms each record into one.
func Map(name string, fn func(Record) (Record, error)) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) {
		out, err := fn(r)
		if err != nil || out == nil {
			return nil, err
		}
		return []Record{out}, nil
	}}
}

// Filter keeps the records for which keep returns true.
func Filter(name string, keep func(Record) bool) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) {
		if keep(r) {
			return []Record{r}, nil
		}
		return nil, nil
	}}
}

// FlatMap transforms each record into any number.
func FlatMap(name string, fn func(Record) ([]Record, error)) Transform {
	return Transform{Name: name, Fn: func(_ context.Context, r Record) ([]Record, error) { return fn(r) }}
}

// Once runs the flow once after it is activated.
type Once struct{}

// Next implements engine.Runtime.
func (Once) Next(last time.Time) time.Time {
	if last.IsZero() {
		return time.Unix(0, 0)
	}
	return time.Time{}
}
func (Once) String() string { return "once" }

// Heartbeat runs the flow every Interval (measured from the previous run's
// creation; a run never overlaps the previous one).
type Heartbeat struct{ Interval time.Duration }

// Next implements engine.Runtime.
func (h Heartbeat) Next(last time.Time) time.Time {
	if last.IsZero() {
		return time.Unix(0, 0)
	}
	return last.Add(h.Interval)
}
func (h Heartbeat) String() string { return "every " + h.Interval.String() }

// Cron runs the flow on a cron schedule (five fields, or descriptors such as
// "@hourly"), in UTC.
type Cron struct{ Spec string }

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Next implements engine.Runtime.
func (c Cron) Next(last time.Time) time.Time {
	sched, err := cronParser.Parse(c.Spec)
	if err != nil {
		return time.Time{}
	}
	if last.IsZero() {
		last = time.Now()
	}
	return sched.Next(last.UTC())
}
func (c Cron) String() string { return "cron " + c.Spec }

// Options are a flow's default run options (zero fields take the defaults).
type Options = store.RunOptions

// Defaults for options a flow leaves zero.
var Defaults = Options{BatchSize: 1000, MaxAttempts: 5, MaxInFlight: 4, BatchTimeout: 10 * time.Minute}

// Flow describes a data flow.
type Flow struct {
	Name        string
	Description string
	Source      Source
	Transforms  []Transform
	Sink        Sink
	Runtime     engine.Runtime
	Options     Options
}

// Register compiles the flow and adds it to engine.DefaultRegistry.
func Register(f Flow) error {
	j, err := New(f)
	if err != nil {
		return err
	}
	return engine.DefaultRegistry.Register(j)
}

// MustRegister is Register that panics on error.
func MustRegister(f Flow) engine.Job {
	j, err := New(f)
	if err == nil {
		err = engine.DefaultRegistry.Register(j)
	}
	if err != nil {
		panic(err)
	}
	return j
}

// New compiles the flow into an engine.Job without registering it.
func New(f Flow) (engine.Job, error) {
	switch {
	case f.Name == "":
		return nil, errors.New("flow: Name is required")
	case f.Source == nil:
		return nil, fmt.Errorf("flow %q: Source is required", f.Name)
	case f.Sink == nil:
		return nil, fmt.Errorf("flow %q: Sink is required", f.Name)
	}
	if f.Runtime == nil {
		f.Runtime = Once{}
	}
	if c, ok := f.Runtime.(Cron); ok {
		if _, err := cronParser.Parse(c.Spec); err != nil {
			return nil, fmt.Errorf("flow %q: cron spec %q: %w", f.Name, c.Spec, err)
		}
	}
	if h, ok := f.Runtime.(Heartbeat); ok && h.Interval <= 0 {
		return nil, fmt.Errorf("flow %q: heartbeat interval must be positive", f.Name)
	}
	for i, t := range f.Transforms {
		if t.Fn == nil {
			return nil, fmt.Errorf("flow %q: transform %d (%q) has no function", f.Name, i, t.Name)
		}
	}
	opts := f.Options
	if opts.BatchSize == 0 {
		opts.BatchSize = Defaults.BatchSize
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = Defaults.MaxAttempts
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = Defaults.MaxInFlight
	}
	if opts.BatchTimeout == 0 {
		opts.BatchTimeout = Defaults.BatchTimeout
	}
	cfg, err := Describe(f)
	if err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.Name, err)
	}
	defaults, _ := json.Marshal(opts)
	schema, _ := json.Marshal(params.Schema{Fields: []params.Field{}})
	return &job{f: f, opts: opts, meta: store.Definition{
		Name: f.Name, Kind: store.KindFlow, Description: f.Description,
		ParamsSchema: schema, Defaults: defaults, Config: cfg,
	}}, nil
}

// Config is a flow's stored configuration.
type Config struct {
	Source     ConnectorConfig `json:"source"`
	Transforms []string        `json:"transforms"`
	Sink       ConnectorConfig `json:"sink"`
	Runtime    string          `json:"runtime"`
}

// ConnectorConfig is a connector's name and its settings.
type ConnectorConfig struct {
	Type     string          `json:"type"`
	Settings json.RawMessage `json:"settings"`
}

// Describe returns the flow's configuration as stored JSON.
func Describe(f Flow) (json.RawMessage, error) {
	src, err := json.Marshal(f.Source)
	if err != nil {
		return nil, fmt.Errorf("describe source: %w", err)
	}
	sink, err := json.Marshal(f.Sink)
	if err != nil {
		return nil, fmt.Errorf("describe sink: %w", err)
	}
	c := Config{
		Source:     ConnectorConfig{Type: f.Source.Connector(), Settings: src},
		Sink:       ConnectorConfig{Type: f.Sink.Connector(), Settings: sink},
		Transforms: []string{},
	}
	if f.Runtime != nil {
		c.Runtime = f.Runtime.String()
	}
	for _, t := range f.Transforms {
		c.Transforms = append(c.Transforms, t.Name)
	}
	return json.Marshal(c)
}

var (
	connMu  sync.RWMutex
	sources = map[string]func(json.RawMessage) (Source, error){}
	sinks   = map[string]func(json.RawMessage) (Sink, error){}
)

// RegisterSource registers a source connector by name; connector packages
// call it from init.
func RegisterSource(name string, build func(settings json.RawMessage) (Source, error)) {
	connMu.Lock()
	defer connMu.Unlock()
	if _, dup := sources[name]; dup {
		panic(fmt.Sprintf("flows: source connector %q registered twice", name))
	}
	sources[name] = build
}

// RegisterSink registers a sink connector by name.
func RegisterSink(name string, build func(settings json.RawMessage) (Sink, error)) {
	connMu.Lock()
	defer connMu.Unlock()
	if _, dup := sinks[name]; dup {
		panic(fmt.Sprintf("flows: sink connector %q registered twice", name))
	}
	sinks[name] = build
}

// BuildSource rebuilds a source from its stored configuration.
func BuildSource(c ConnectorConfig) (Source, error) {
	connMu.RLock()
	build, ok := sources[c.Type]
	connMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown source connector %q (known: %v)", c.Type, names(sources))
	}
	return build(c.Settings)
}

// BuildSink rebuilds a sink from its stored configuration.
func BuildSink(c ConnectorConfig) (Sink, error) {
	connMu.RLock()
	build, ok := sinks[c.Type]
	connMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown sink connector %q (known: %v)", c.Type, names(sinks))
	}
	return build(c.Settings)
}

func names[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
