package flows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Connector describes a registered connector kind: how to make an empty
// configuration for its source and sink sides (either may be nil), and what
// to show about it.
type Connector struct {
	// Kind is the name flows and specs use ("sql", "redisstream").
	Kind string
	// Description says in a line what the connector reads or writes.
	Description string
	// Delivery says what its sink guarantees, and when (shown by
	// GET /api/v1/connectors).
	Delivery string
	// Source returns a new zero source configuration; nil when the
	// connector has no source.
	Source func() SourceConfig
	// Sink returns a new zero sink configuration; nil when it has no sink.
	Sink func() SinkConfig
}

var (
	connMu     sync.RWMutex
	connectors = map[string]Connector{}
)

// Register adds a connector kind; connector packages call it from init.
// Registering a kind twice panics.
func RegisterConnector(c Connector) {
	if c.Kind == "" || (c.Source == nil && c.Sink == nil) {
		panic("flows: a connector needs a Kind and a Source or a Sink")
	}
	connMu.Lock()
	defer connMu.Unlock()
	if _, dup := connectors[c.Kind]; dup {
		panic(fmt.Sprintf("flows: connector %q registered twice", c.Kind))
	}
	connectors[c.Kind] = c
}

// Connectors returns every registered connector, ordered by kind.
func Connectors() []Connector {
	connMu.RLock()
	defer connMu.RUnlock()
	out := make([]Connector, 0, len(connectors))
	for _, c := range connectors {
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Kind < out[b].Kind })
	return out
}

func lookup(kind string) (Connector, bool) {
	connMu.RLock()
	defer connMu.RUnlock()
	c, ok := connectors[kind]
	return c, ok
}

func kinds(side string) string {
	var out []string
	for _, c := range Connectors() {
		if (side == "source" && c.Source != nil) || (side == "sink" && c.Sink != nil) {
			out = append(out, c.Kind)
		}
	}
	return strings.Join(out, ", ")
}

// ConnectorConfig is a connector's kind and its settings as stored JSON.
type ConnectorConfig struct {
	Kind     string          `json:"kind"`
	Settings json.RawMessage `json:"settings"`
}

// DecodeSource turns a stored source configuration back into a validated
// SourceConfig. Unknown kinds, unknown settings and invalid values are
// *FieldErrors naming the field under "source".
func DecodeSource(c ConnectorConfig) (SourceConfig, error) {
	conn, ok := lookup(c.Kind)
	if !ok || conn.Source == nil {
		return nil, Errorf("source.kind", "unknown source connector %q (known: %s)", c.Kind, kinds("source"))
	}
	cfg := conn.Source()
	if err := decodeStrict(c.Settings, cfg); err != nil {
		return nil, prefixField("source", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, prefixField("source", err)
	}
	return cfg, nil
}

// DecodeSink is DecodeSource for sinks.
func DecodeSink(c ConnectorConfig) (SinkConfig, error) {
	conn, ok := lookup(c.Kind)
	if !ok || conn.Sink == nil {
		return nil, Errorf("sink.kind", "unknown sink connector %q (known: %s)", c.Kind, kinds("sink"))
	}
	cfg := conn.Sink()
	if err := decodeStrict(c.Settings, cfg); err != nil {
		return nil, prefixField("sink", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, prefixField("sink", err)
	}
	return cfg, nil
}

// decodeStrict decodes settings into v (a pointer), refusing fields v does
// not have, so a misspelt setting is an error rather than a default.
func decodeStrict(settings json.RawMessage, v any) error {
	if len(bytes.TrimSpace(settings)) == 0 || string(bytes.TrimSpace(settings)) == "null" {
		settings = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(settings))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return Errorf(te.Field, "must be %s, got %s", jsonKind(te.Type), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Errorf(name, "is not a setting of this connector (settings: %s)", strings.Join(Settings(v), ", "))
		}
		return Errorf("", "settings: %v", err)
	}
	if dec.More() {
		return Errorf("", "settings: unexpected data after the JSON object")
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// Settings returns the JSON names of a configuration's settings.
func Settings(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// SettingSchema describes one setting of a connector configuration, from
// its struct field's tags: `json:"name"` and `help:"…"`.
type SettingSchema struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Help     string `json:"help,omitempty"`
}

// Schema describes a configuration's settings for forms and the API.
// Settings without omitempty in their json tag are required.
func Schema(v any) []SettingSchema {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []SettingSchema
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, SettingSchema{
			Name: name, Type: schemaType(f.Type), Help: f.Tag.Get("help"),
			Required: !strings.Contains(opts, "omitempty"),
		})
	}
	return out
}

// schemaType names a setting's JSON type as forms and the API show it.
func schemaType(t reflect.Type) string {
	switch k := jsonKind(t); k {
	case "true or false":
		return "boolean"
	default:
		_, name, _ := strings.Cut(k, " ") // "a string", "an integer"
		return name
	}
}
