// Package params turns a definition's typed parameters — a Go struct — into a
// schema (for the API and the UI's "start run" form) and decodes and validates
// a run's JSON params into that struct.
//
// Fields are described with struct tags:
//
//	type Params struct {
//		Role   string    `json:"role" default:"member" enum:"member,admin" help:"role to set"`
//		Limit  int       `json:"limit" required:"true"`
//		Since  time.Time `json:"since"`
//		DryRun bool      `json:"dry_run"`
//	}
//
// Supported field types: string, bool, signed and unsigned integers, floats,
// time.Time (RFC 3339), time.Duration (Go syntax such as "1m30s") and CSV (a
// file's rows, see CSV; its `headers` tag lists the columns it must have). A
// params type may also implement `Validate() error` for rules across fields.
package params

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is matched by every *Error.
var ErrInvalid = errors.New("invalid params")

// Error reports a bad param and which field carries it.
type Error struct {
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "invalid params: " + e.Message
	}
	return fmt.Sprintf("invalid param %s: %s", e.Field, e.Message)
}

// Is makes *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Field types of a Schema.
const (
	TypeString   = "string"
	TypeInteger  = "integer"
	TypeNumber   = "number"
	TypeBoolean  = "boolean"
	TypeTime     = "time"
	TypeDuration = "duration"
)

// Field describes one param.
type Field struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Required    bool     `json:"required"`
	Default     any      `json:"default,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Description string   `json:"description,omitempty"`
	// Headers are the columns a CSV field's header must name.
	Headers []string `json:"headers,omitempty"`

	index int
}

// Schema describes a params struct.
type Schema struct {
	Fields []Field `json:"fields"`
}

var (
	timeType     = reflect.TypeOf(time.Time{})
	durationType = reflect.TypeOf(time.Duration(0))
)

// Spec is the compiled description of params type P.
type Spec[P any] struct {
	schema Schema
}

// NewSpec inspects P, which must be a struct (or struct{} for no params).
func NewSpec[P any]() (*Spec[P], error) {
	t := reflect.TypeFor[P]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("params type %s must be a struct", t)
	}
	var s Schema
	seen := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Name
		if tag, ok := sf.Tag.Lookup("json"); ok {
			n, _, _ := strings.Cut(tag, ",")
			if n == "-" {
				continue
			}
			if n != "" {
				name = n
			}
		}
		if other, dup := seen[name]; dup {
			return nil, fmt.Errorf("params %s: fields %s and %s are both named %q", t, other, sf.Name, name)
		}
		seen[name] = sf.Name
		f := Field{Name: name, Description: sf.Tag.Get("help"), index: i}
		switch {
		case sf.Type == csvType:
			f.Type = TypeCSV
			if _, ok := sf.Tag.Lookup("default"); ok {
				return nil, fmt.Errorf("params %s: CSV field %s cannot have a default", t, sf.Name)
			}
			for _, h := range strings.Split(sf.Tag.Get("headers"), ",") {
				if h = strings.TrimSpace(h); h != "" {
					f.Headers = append(f.Headers, h)
				}
			}
		case sf.Type == timeType:
			f.Type = TypeTime
		case sf.Type == durationType:
			f.Type = TypeDuration
		default:
			switch sf.Type.Kind() {
			case reflect.String:
				f.Type = TypeString
			case reflect.Bool:
				f.Type = TypeBoolean
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
				f.Type = TypeInteger
			case reflect.Float32, reflect.Float64:
				f.Type = TypeNumber
			default:
				return nil, fmt.Errorf("params %s: field %s has unsupported type %s", t, sf.Name, sf.Type)
			}
		}
		f.Required = sf.Tag.Get("required") == "true"
		if enum := sf.Tag.Get("enum"); enum != "" {
			if f.Type != TypeString {
				return nil, fmt.Errorf("params %s: enum on non-string field %s", t, sf.Name)
			}
			for _, v := range strings.Split(enum, ",") {
				f.Enum = append(f.Enum, strings.TrimSpace(v))
			}
		}
		if def, ok := sf.Tag.Lookup("default"); ok {
			v := reflect.New(sf.Type).Elem()
			if err := setString(v, f.Type, def); err != nil {
				return nil, fmt.Errorf("params %s: default of %s: %w", t, sf.Name, err)
			}
			if len(f.Enum) > 0 && !slices.Contains(f.Enum, def) {
				return nil, fmt.Errorf("params %s: default %q of %s is not one of %v", t, def, sf.Name, f.Enum)
			}
			f.Default = jsonValue(v, f.Type)
		}
		s.Fields = append(s.Fields, f)
	}
	return &Spec[P]{schema: s}, nil
}

// Schema returns the params' schema.
func (s *Spec[P]) Schema() Schema { return s.schema }

// Decode parses raw (a JSON object; empty or null means {}) into P: unknown fields,
// wrong types, missing required fields and values outside an enum are
// errors naming the field; absent fields take their default. Then P's
// Validate method, if any, runs.
func (s *Spec[P]) Decode(raw json.RawMessage) (P, error) {
	var p P
	obj := map[string]json.RawMessage{}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && string(trimmed) != "null" {
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return p, &Error{Message: "params must be a JSON object"}
		}
	}
	known := map[string]bool{}
	v := reflect.ValueOf(&p).Elem()
	for _, f := range s.schema.Fields {
		known[f.Name] = true
		fv := v.Field(f.index)
		rawField, present := obj[f.Name]
		if present && string(bytes.TrimSpace(rawField)) == "null" {
			present = false
		}
		if present && f.Type == TypeCSV {
			var text string
			if err := json.Unmarshal(rawField, &text); err != nil {
				return p, &Error{Field: f.Name, Message: "must be a string: the CSV file's text"}
			}
			c, err := ParseCSV(text, f.Headers)
			if err != nil {
				return p, &Error{Field: f.Name, Message: err.Error()}
			}
			fv.Set(reflect.ValueOf(c))
			continue
		}
		if present {
			if err := setJSON(fv, f.Type, rawField); err != nil {
				return p, &Error{Field: f.Name, Message: err.Error()}
			}
			// The zero time is how a time is left unset (Encode writes it
			// as null), and "" how an enum is (an HTML select's empty
			// option, or Encode of an optional enum): both count as absent.
			if (f.Type == TypeTime || len(f.Enum) > 0) && fv.IsZero() {
				present = false
			}
		}
		if !present {
			if f.Required {
				return p, &Error{Field: f.Name, Message: "is required"}
			}
			if f.Default != nil {
				b, _ := json.Marshal(f.Default)
				if err := setJSON(fv, f.Type, b); err != nil {
					return p, &Error{Field: f.Name, Message: err.Error()}
				}
			}
			continue
		}
		if f.Required && fv.IsZero() && f.Type == TypeString {
			return p, &Error{Field: f.Name, Message: "is required"}
		}
		if len(f.Enum) > 0 && !slices.Contains(f.Enum, fv.String()) {
			return p, &Error{Field: f.Name, Message: fmt.Sprintf("must be one of %s", strings.Join(f.Enum, ", "))}
		}
	}
	for name := range obj {
		if !known[name] {
			return p, &Error{Field: name, Message: "is not a parameter of this definition"}
		}
	}
	if val, ok := any(&p).(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return p, pe
			}
			return p, &Error{Message: err.Error()}
		}
	}
	return p, nil
}

// Encode returns p as the canonical JSON object stored on a run.
func (s *Spec[P]) Encode(p P) (json.RawMessage, error) {
	out := map[string]any{}
	v := reflect.ValueOf(p)
	for _, f := range s.schema.Fields {
		out[f.Name] = jsonValue(v.Field(f.index), f.Type)
	}
	// Without HTML escaping, which would make a CSV's text up to six times
	// longer as stored.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func jsonValue(v reflect.Value, typ string) any {
	switch typ {
	case TypeTime:
		t := v.Interface().(time.Time)
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	case TypeDuration:
		return time.Duration(v.Int()).String()
	}
	return v.Interface()
}

func setJSON(v reflect.Value, typ string, raw json.RawMessage) error {
	switch typ {
	case TypeTime, TypeDuration:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("must be a string (%s)", typ)
		}
		return setString(v, typ, s)
	case TypeString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return errors.New("must be a string")
		}
		v.SetString(s)
		return nil
	case TypeBoolean:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return errors.New("must be true or false")
		}
		v.SetBool(b)
		return nil
	}
	// Numbers may come as JSON numbers or, from HTML forms, as strings.
	s := strings.TrimSpace(string(raw))
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	return setString(v, typ, s)
}

func setString(v reflect.Value, typ, s string) error {
	switch typ {
	case TypeString:
		v.SetString(s)
	case TypeBoolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("must be true or false")
		}
		v.SetBool(b)
	case TypeInteger:
		if v.Kind() >= reflect.Uint && v.Kind() <= reflect.Uint64 {
			n, err := strconv.ParseUint(s, 10, v.Type().Bits())
			if err != nil {
				return fmt.Errorf("must be a non-negative integer that fits %s", v.Type())
			}
			v.SetUint(n)
			return nil
		}
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer that fits %s", v.Type())
		}
		v.SetInt(n)
	case TypeNumber:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		// NaN and infinities parse from strings but have no JSON form.
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("must be a number")
		}
		v.SetFloat(f)
	case TypeTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		// Times are kept in UTC, where RFC 3339 still needs a 4-digit year.
		if err == nil && (t.UTC().Year() < 0 || t.UTC().Year() > 9999) {
			err = errors.New("year out of range")
		}
		if err != nil {
			return errors.New("must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		v.Set(reflect.ValueOf(t.UTC()))
	case TypeDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New(`must be a duration such as "90s" or "1h30m"`)
		}
		v.SetInt(int64(d))
	default:
		return fmt.Errorf("unsupported type %s", typ)
	}
	return nil
}
