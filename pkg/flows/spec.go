package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dripflow/dripflow/pkg/engine"
	"github.com/dripflow/dripflow/pkg/store"
)

// Spec is a flow written as data rather than Go: what the API, the UI and
// YAML files (DRIPFLOW_FLOWS_DIR) carry. Compile turns it into a Flow,
// checking every connector setting and transform against the registries; a
// *FieldError names the failing field ("sink.key", "transforms[1].fields",
// "runtime").
type Spec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Source      ConnectorConfig `json:"source"`
	Transforms  []TransformSpec `json:"transforms,omitempty"`
	Sink        ConnectorConfig `json:"sink"`
	// Runtime is "once" (the default), "every 30s" or "cron */5 * * * *"
	// (five fields or a descriptor such as "@hourly", in UTC).
	Runtime string      `json:"runtime,omitempty"`
	Options SpecOptions `json:"options,omitempty"`
	// MaxBatchesPerRun bounds a run of an offset source (default 100).
	MaxBatchesPerRun int `json:"max_batches_per_run,omitempty"`
	// Webhooks receive the flow's run events (see WebhookSpec).
	Webhooks []WebhookSpec `json:"webhooks,omitempty"`
}

// SpecOptions are a spec's default run options; durations are Go duration
// strings ("250ms", "10m"). Zero fields take the flow defaults.
type SpecOptions struct {
	BatchSize     int    `json:"batch_size,omitempty"`
	MaxInFlight   int    `json:"max_in_flight,omitempty"`
	MaxAttempts   int    `json:"max_attempts,omitempty"`
	Sleep         string `json:"sleep,omitempty"`
	RowsPerSecond int    `json:"rows_per_second,omitempty"`
	BatchTimeout  string `json:"batch_timeout,omitempty"`
	ErrorBudget   int    `json:"error_budget,omitempty"`
	// TargetBatchTime ("200ms") turns the adaptive batch size on, within
	// MinBatchSize..MaxBatchSize (0: the defaults).
	TargetBatchTime string `json:"target_batch_time,omitempty"`
	MinBatchSize    int    `json:"min_batch_size,omitempty"`
	MaxBatchSize    int    `json:"max_batch_size,omitempty"`
	// HealthChecks hold the flow's runs while the database is unhealthy
	// (see store.HealthCheck).
	HealthChecks []SpecHealthCheck `json:"health_checks,omitempty"`
}

// SpecHealthCheck is a database health check of a spec flow's runs:
// replication_lag, autovacuum or lock_waits. Kind sql is refused — a spec
// comes from the API, the UI or files, and arbitrary SQL is accepted only
// from Go definitions — and a spec has no field for a query.
type SpecHealthCheck struct {
	Kind       string  `json:"kind"`
	Name       string  `json:"name,omitempty"`
	Connection string  `json:"connection,omitempty"`
	MaxSeconds float64 `json:"max_seconds,omitempty"`
	Table      string  `json:"table,omitempty"`
	Max        int     `json:"max,omitempty"`
}

// TransformSpec is one transform of a spec: its type (a built-in such as
// "rename", or a Go transform registered by name), an optional label, and
// its settings, written inline: {"type": "rename", "fields": {"id": "user_id"}}.
type TransformSpec struct {
	Type     string
	Name     string
	Settings map[string]json.RawMessage
}

// MarshalJSON writes the settings inline next to type and name.
func (t TransformSpec) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.RawMessage, len(t.Settings)+2)
	for k, v := range t.Settings {
		m[k] = v
	}
	typ, _ := json.Marshal(t.Type)
	m["type"] = typ
	if t.Name != "" {
		name, _ := json.Marshal(t.Name)
		m["name"] = name
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads type, name and the inline settings.
func (t *TransformSpec) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*t = TransformSpec{Settings: map[string]json.RawMessage{}}
	for k, v := range m {
		switch k {
		case "type":
			if err := json.Unmarshal(v, &t.Type); err != nil {
				return fmt.Errorf("type must be a string")
			}
		case "name":
			if err := json.Unmarshal(v, &t.Name); err != nil {
				return fmt.Errorf("name must be a string")
			}
		default:
			t.Settings[k] = v
		}
	}
	return nil
}

// TransformBuilder makes a transform from a spec's settings. It returns a
// *FieldError naming the setting that is wrong.
type TransformBuilder func(settings map[string]json.RawMessage) (Transform, error)

var (
	transformMu sync.RWMutex
	transforms  = map[string]TransformBuilder{}
)

// RegisterTransform makes a Go transform usable by name in specs; its
// settings are whatever the spec writes next to "type". Registering a name
// twice (or a built-in's) panics.
func RegisterTransform(name string, build TransformBuilder) {
	transformMu.Lock()
	defer transformMu.Unlock()
	if _, dup := transforms[name]; dup {
		panic(fmt.Sprintf("flows: transform %q registered twice", name))
	}
	transforms[name] = build
}

// TransformTypes returns the transform types specs may use, sorted.
func TransformTypes() []string {
	transformMu.RLock()
	defer transformMu.RUnlock()
	out := make([]string, 0, len(transforms))
	for k := range transforms {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var specName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,99}$`)

// ParseSpec decodes a JSON spec strictly: unknown top-level fields and
// trailing data are errors.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return s, fe
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return s, Errorf(name, "is not a field of a flow spec")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return s, Errorf(te.Field, "must be %s", jsonKind(te.Type))
		}
		return s, Errorf("", "flow spec: %v", err)
	}
	if dec.More() {
		return s, Errorf("", "flow spec: unexpected data after the JSON object")
	}
	return s, nil
}

// Compile checks the spec against the connector and transform registries
// and returns the flow it describes. Nothing is connected.
func (s Spec) Compile() (Flow, error) {
	if !specName.MatchString(s.Name) {
		return Flow{}, Errorf("name", "must be 1 to 100 lower-case letters, digits or _, starting with a letter, got %q", s.Name)
	}
	if len(s.Description) > 2000 {
		return Flow{}, Errorf("description", "must be at most 2000 bytes")
	}
	src, err := DecodeSource(s.Source)
	if err != nil {
		return Flow{}, err
	}
	sink, err := DecodeSink(s.Sink)
	if err != nil {
		return Flow{}, err
	}
	rt, err := ParseRuntime(s.Runtime)
	if err != nil {
		return Flow{}, Errorf("runtime", "%v", err)
	}
	opts, err := s.Options.runOptions()
	if err != nil {
		return Flow{}, err
	}
	if s.MaxBatchesPerRun < 0 {
		return Flow{}, Errorf("max_batches_per_run", "must not be negative")
	}
	hooks, err := webhooks(s.Webhooks)
	if err != nil {
		return Flow{}, err
	}
	f := Flow{
		Name: s.Name, Description: s.Description, Source: src, Sink: sink, Runtime: rt,
		Options: opts, MaxBatchesPerRun: s.MaxBatchesPerRun, Webhooks: hooks,
	}
	for i, ts := range s.Transforms {
		t, err := buildTransform(ts)
		if err != nil {
			return Flow{}, prefixField(fmt.Sprintf("transforms[%d]", i), err)
		}
		f.Transforms = append(f.Transforms, t)
	}
	return f, nil
}

func buildTransform(ts TransformSpec) (Transform, error) {
	transformMu.RLock()
	build, ok := transforms[ts.Type]
	transformMu.RUnlock()
	if !ok {
		return Transform{}, Errorf("type", "unknown transform %q (known: %s)", ts.Type, strings.Join(TransformTypes(), ", "))
	}
	t, err := build(ts.Settings)
	if err != nil {
		return Transform{}, err
	}
	t.Name = ts.Type
	if ts.Name != "" {
		t.Name = ts.Name
	}
	return t, nil
}

func (o SpecOptions) runOptions() (Options, error) {
	opts := Options{
		BatchSize: o.BatchSize, MaxInFlight: o.MaxInFlight, MaxAttempts: o.MaxAttempts,
		RowsPerSecond: o.RowsPerSecond, ErrorBudget: o.ErrorBudget,
		MinBatchSize: o.MinBatchSize, MaxBatchSize: o.MaxBatchSize,
	}
	for i, c := range o.HealthChecks {
		if store.HealthKind(c.Kind) == store.HealthSQL {
			return opts, Errorf(fmt.Sprintf("options.health_checks[%d].kind", i),
				"sql checks can only be declared in a Go definition (code), never in a flow spec: they run arbitrary SQL on the database")
		}
		opts.HealthChecks = append(opts.HealthChecks, store.HealthCheck{Kind: store.HealthKind(c.Kind), Name: c.Name,
			Connection: c.Connection, MaxSeconds: c.MaxSeconds, Table: c.Table, Max: c.Max})
	}
	for field, d := range map[string]struct {
		raw string
		dst *time.Duration
	}{"options.sleep": {o.Sleep, &opts.Sleep}, "options.batch_timeout": {o.BatchTimeout, &opts.BatchTimeout},
		"options.target_batch_time": {o.TargetBatchTime, &opts.TargetBatchTime}} {
		if d.raw == "" {
			continue
		}
		v, err := time.ParseDuration(d.raw)
		if err != nil || v < 0 {
			return opts, Errorf(field, "must be a duration such as 250ms or 10m, got %q", d.raw)
		}
		*d.dst = v
	}
	for field, v := range map[string]int{"options.batch_size": o.BatchSize, "options.max_in_flight": o.MaxInFlight,
		"options.max_attempts": o.MaxAttempts, "options.rows_per_second": o.RowsPerSecond, "options.error_budget": o.ErrorBudget,
		"options.min_batch_size": o.MinBatchSize, "options.max_batch_size": o.MaxBatchSize} {
		if v < 0 {
			return opts, Errorf(field, "must not be negative, got %d", v)
		}
	}
	// Zero fields take the defaults; what is set must be in range.
	if err := opts.WithDefaults(Defaults).Validate(); err != nil {
		var ae *store.ArgumentError
		if errors.As(err, &ae) {
			return opts, Errorf("options."+ae.Field, "%s", ae.Message)
		}
		return opts, Errorf("options", "%v", err)
	}
	return opts, nil
}

// ParseRuntime reads a runtime as Runtime.String writes it: "once",
// "every 30s" (also "heartbeat 30s"), "cron */5 * * * *" (also a bare cron
// spec or descriptor such as "@hourly"). Empty means once.
func ParseRuntime(s string) (engine.Runtime, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "once":
		return Once{}, nil
	case strings.HasPrefix(s, "every ") || strings.HasPrefix(s, "heartbeat "):
		_, rest, _ := strings.Cut(s, " ")
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("heartbeat interval must be a duration of at least 1s, got %q", rest)
		}
		return Heartbeat{Interval: d}, nil
	}
	spec := strings.TrimSpace(strings.TrimPrefix(s, "cron "))
	if _, err := cronParser.Parse(spec); err != nil {
		return nil, fmt.Errorf(`must be "once", "every <duration>" or "cron <spec>": %v`, err)
	}
	return Cron{Spec: spec}, nil
}

// ParseSpecYAML decodes a spec written in YAML (the same fields as JSON).
// Several documents in one file are an error: one flow per file.
func ParseSpecYAML(data []byte) (Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Spec{}, Errorf("", "flow spec: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return Spec{}, Errorf("", "flow spec: one flow per file; found a second YAML document")
	}
	if _, ok := doc.(map[string]any); !ok {
		return Spec{}, Errorf("", "flow spec: must be a mapping of fields, got %T", doc)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return Spec{}, Errorf("", "flow spec: %v", err)
	}
	return ParseSpec(js)
}

// YAML writes the spec as YAML, as `dripflow new flow --yaml` and
// `dripflow flows show` print it.
func (s Spec) YAML() ([]byte, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	// JSON is YAML; re-encoding its node tree gives block style.
	setBlockStyle(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func setBlockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle) != 0 {
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		setBlockStyle(c)
	}
}
