package flows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/notify"
	"github.com/dripflow/dripflow/pkg/params"
	"github.com/dripflow/dripflow/pkg/store"
)

// Options are a flow's default run options (zero fields take the defaults).
type Options = store.RunOptions

// Defaults for options a flow leaves zero.
var Defaults = Options{BatchSize: 1000, MaxAttempts: 5, MaxInFlight: 4, BatchTimeout: 10 * time.Minute}

// MaxBatchesPerRunDefault bounds how many batches one run of a flow with an
// offset source plans: records keep arriving, and a run must end for the
// flow's offset to be committed.
const MaxBatchesPerRunDefault = 100

// Flow describes a data flow: a source, transforms, a sink and a runtime.
type Flow struct {
	Name        string
	Description string
	// Source and Sink are connector configurations, such as
	// &sqlconn.Source{…} and &redisstream.Sink{…}. They are validated by
	// New and built, with their connections, by each process that runs the
	// flow.
	Source     SourceConfig
	Transforms []Transform
	Sink       SinkConfig
	Runtime    engine.Runtime
	Options    Options
	// MaxBatchesPerRun bounds the batches one run plans when the source is
	// an offset source; default MaxBatchesPerRunDefault. Keyed sources read
	// everything in scope.
	MaxBatchesPerRun int
	// OnStart, OnComplete and OnError are called by the leading scheduler
	// when a run of the flow starts, succeeds or fails, as a backfill's
	// (see backfills.Definition); with a heartbeat or cron runtime that is
	// every tick's run.
	OnStart, OnComplete, OnError notify.HookFunc
	// Webhooks receive the flow's run events. The global webhooks
	// (DRIPFLOW_WEBHOOK_URLS) hear only of a flow's failed runs.
	Webhooks []notify.Webhook
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

// New validates the flow and compiles it into an engine.Job without
// registering it. A connector configuration error is a *FieldError naming
// its field ("source.table").
func New(f Flow) (engine.Job, error) {
	switch {
	case f.Name == "":
		return nil, errors.New("flow: Name is required")
	case f.Source == nil:
		return nil, fmt.Errorf("flow %q: Source is required", f.Name)
	case f.Sink == nil:
		return nil, fmt.Errorf("flow %q: Sink is required", f.Name)
	}
	if err := f.Source.Validate(); err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.Name, prefixField("source", err))
	}
	if err := f.Sink.Validate(); err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.Name, prefixField("sink", err))
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
		if (t.Fn == nil) == (t.Batch == nil) {
			return nil, fmt.Errorf("flow %q: transform %d (%q) has no function (set Fn or Batch)", f.Name, i, t.Name)
		}
	}
	if err := f.hooks().Validate(); err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.Name, fieldError(err))
	}
	if err := store.ValidateHealthChecks(f.Options.HealthChecks); err != nil {
		return nil, fmt.Errorf("flow %q: options: %w", f.Name, err)
	}
	switch {
	case f.MaxBatchesPerRun < 0:
		return nil, fmt.Errorf("flow %q: MaxBatchesPerRun must not be negative", f.Name)
	case f.MaxBatchesPerRun == 0:
		f.MaxBatchesPerRun = MaxBatchesPerRunDefault
	}
	opts := f.Options.WithDefaults(Defaults)
	cfg, err := Describe(f)
	if err != nil {
		return nil, fmt.Errorf("flow %q: %w", f.Name, err)
	}
	defaults, _ := json.Marshal(opts)
	schema, _ := json.Marshal(params.Schema{Fields: []params.Field{}})
	return &job{f: f, opts: opts, built: map[*engine.Resources]*built{}, meta: store.Definition{
		Name: f.Name, Kind: store.KindFlow, Description: f.Description,
		ParamsSchema: schema, Defaults: defaults, Config: cfg, Origin: store.OriginCode,
	}}, nil
}

// Config is a flow's stored configuration, shown by the UI and the API.
type Config struct {
	Source     ConnectorConfig `json:"source"`
	Transforms []string        `json:"transforms"`
	Sink       ConnectorConfig `json:"sink"`
	Runtime    string          `json:"runtime"`
	// Guarantee is what the sink promises outside the store's
	// transaction; a TxSink on the store's database is transactional.
	Guarantee Guarantee `json:"guarantee"`
	// Transactional is true when the sink can commit with the checkpoint
	// (it does when its database is the store's).
	Transactional    bool `json:"transactional,omitempty"`
	MaxBatchesPerRun int  `json:"max_batches_per_run,omitempty"`
	// Notify lists the hooks and webhooks (redacted) the flow declares.
	Notify []string `json:"notify,omitempty"`
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
		Source:           ConnectorConfig{Kind: f.Source.Kind(), Settings: src},
		Sink:             ConnectorConfig{Kind: f.Sink.Kind(), Settings: sink},
		Transforms:       []string{},
		Guarantee:        f.Sink.Guarantee(),
		MaxBatchesPerRun: f.MaxBatchesPerRun,
	}
	if t, ok := f.Sink.(interface{ CanJoinTransaction() bool }); ok {
		c.Transactional = t.CanJoinTransaction()
	}
	if f.Runtime != nil {
		c.Runtime = f.Runtime.String()
	}
	for _, t := range f.Transforms {
		c.Transforms = append(c.Transforms, t.Name)
	}
	c.Notify = f.hooks().Declared()
	return json.Marshal(c)
}
