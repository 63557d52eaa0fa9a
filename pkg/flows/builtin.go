package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The transforms a spec can use without code:
//
//	{"type": "select", "fields": ["id", "email"]}          keep only these fields
//	{"type": "drop", "fields": ["password_hash"]}          remove fields
//	{"type": "rename", "fields": {"id": "user_id"}}        rename fields
//	{"type": "set", "field": "source", "value": "crm"}     set a constant
//	{"type": "set", "field": "name", "template": "{{.first}} {{.last}}"}
//	{"type": "cast", "fields": {"age": "int", "at": "time"}} int, float, string, bool, time
//	{"type": "filter", "where": "active == true and age >= 18"}
//	{"type": "dedupe", "key": ["email"]}                   keep a batch's first record per key
func init() {
	RegisterTransform("select", buildSelect)
	RegisterTransform("drop", buildDrop)
	RegisterTransform("rename", buildRename)
	RegisterTransform("set", buildSet)
	RegisterTransform("cast", buildCast)
	RegisterTransform("filter", buildFilter)
	RegisterTransform("dedupe", buildDedupe)
}

// settingsOf decodes a transform's settings into v's named fields,
// refusing settings it does not know.
func settingsOf(settings map[string]json.RawMessage, known map[string]any, required ...string) error {
	for k, raw := range settings {
		dst, ok := known[k]
		if !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return Errorf(k, "is not a setting of this transform (settings: %s)", strings.Join(names, ", "))
		}
		if dst == nil {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return Errorf(k, "has the wrong type: %v", err)
		}
	}
	for _, r := range required {
		if _, ok := settings[r]; !ok {
			return Errorf(r, "is required")
		}
	}
	return nil
}

func fieldList(name string, fields []string) error {
	if len(fields) == 0 {
		return Errorf(name, "must list at least one field")
	}
	for _, f := range fields {
		if strings.TrimSpace(f) == "" {
			return Errorf(name, "has an empty field name")
		}
	}
	return nil
}

func buildSelect(s map[string]json.RawMessage) (Transform, error) {
	var fields []string
	if err := settingsOf(s, map[string]any{"fields": &fields}, "fields"); err != nil {
		return Transform{}, err
	}
	if err := fieldList("fields", fields); err != nil {
		return Transform{}, err
	}
	return Map("select", func(r Record) (Record, error) {
		out := make(Record, len(fields))
		for _, f := range fields {
			if v, ok := r[f]; ok {
				out[f] = v
			}
		}
		return out, nil
	}), nil
}

func buildDrop(s map[string]json.RawMessage) (Transform, error) {
	var fields []string
	if err := settingsOf(s, map[string]any{"fields": &fields}, "fields"); err != nil {
		return Transform{}, err
	}
	if err := fieldList("fields", fields); err != nil {
		return Transform{}, err
	}
	return Map("drop", func(r Record) (Record, error) {
		out := make(Record, len(r))
		for k, v := range r {
			out[k] = v
		}
		for _, f := range fields {
			delete(out, f)
		}
		return out, nil
	}), nil
}

func buildRename(s map[string]json.RawMessage) (Transform, error) {
	var fields map[string]string
	if err := settingsOf(s, map[string]any{"fields": &fields}, "fields"); err != nil {
		return Transform{}, err
	}
	if len(fields) == 0 {
		return Transform{}, Errorf("fields", "must map at least one field to its new name")
	}
	targets := map[string]string{}
	for from, to := range fields {
		if strings.TrimSpace(to) == "" {
			return Transform{}, Errorf("fields."+from, "has an empty new name")
		}
		if other, dup := targets[to]; dup {
			return Transform{}, Errorf("fields", "%s and %s are both renamed to %s", other, from, to)
		}
		targets[to] = from
	}
	return Map("rename", func(r Record) (Record, error) {
		out := make(Record, len(r))
		for k, v := range r {
			if to, ok := fields[k]; ok {
				out[to] = v
			} else if _, taken := out[k]; !taken {
				out[k] = v
			}
		}
		return out, nil
	}), nil
}

func buildSet(s map[string]json.RawMessage) (Transform, error) {
	var field, tmpl string
	var value any
	if err := settingsOf(s, map[string]any{"field": &field, "value": &value, "template": &tmpl}, "field"); err != nil {
		return Transform{}, err
	}
	_, hasValue := s["value"]
	_, hasTmpl := s["template"]
	switch {
	case strings.TrimSpace(field) == "":
		return Transform{}, Errorf("field", "is required")
	case hasValue == hasTmpl:
		return Transform{}, Errorf("value", "give value or template, exactly one")
	}
	if hasValue {
		v := fromJSONNumber(value)
		return Map("set", func(r Record) (Record, error) {
			out := make(Record, len(r)+1)
			for k, x := range r {
				out[k] = x
			}
			out[field] = v
			return out, nil
		}), nil
	}
	t, err := template.New("set").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return Transform{}, Errorf("template", "%v", err)
	}
	return Map("set", func(r Record) (Record, error) {
		var b strings.Builder
		if err := t.Execute(&b, r); err != nil {
			return nil, fmt.Errorf("set %s: %w", field, err)
		}
		out := make(Record, len(r)+1)
		for k, x := range r {
			out[k] = x
		}
		out[field] = b.String()
		return out, nil
	}), nil
}

func fromJSONNumber(v any) any {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return f
	}
	return v
}

var castTypes = map[string]func(any) (any, error){
	"string": func(v any) (any, error) {
		switch x := v.(type) {
		case []byte:
			return string(x), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
		return fmt.Sprint(v), nil
	},
	"int": func(v any) (any, error) {
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case json.Number:
			return x.Int64()
		case string:
			return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		}
		f, ok := number(v)
		if !ok || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
			return nil, fmt.Errorf("%v is not an integer", v)
		}
		return int64(f), nil
	},
	"float": func(v any) (any, error) {
		f, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("%v is not a number", v)
		}
		return f, nil
	},
	"bool": func(v any) (any, error) {
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return strconv.ParseBool(strings.TrimSpace(x))
		}
		if f, ok := number(v); ok {
			return f != 0, nil
		}
		return nil, fmt.Errorf("%v is not a boolean", v)
	},
	"time": func(v any) (any, error) {
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02"} {
				if t, err := time.Parse(layout, strings.TrimSpace(x)); err == nil {
					return t.UTC(), nil
				}
			}
			return nil, fmt.Errorf("%q is not an RFC 3339 time", x)
		}
		if f, ok := number(v); ok { // seconds since the epoch
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
		}
		return nil, fmt.Errorf("%v is not a time", v)
	},
}

func buildCast(s map[string]json.RawMessage) (Transform, error) {
	var fields map[string]string
	if err := settingsOf(s, map[string]any{"fields": &fields}, "fields"); err != nil {
		return Transform{}, err
	}
	if len(fields) == 0 {
		return Transform{}, Errorf("fields", "must map at least one field to a type")
	}
	for f, typ := range fields {
		if _, ok := castTypes[typ]; !ok {
			return Transform{}, Errorf("fields."+f, "type must be int, float, string, bool or time, got %q", typ)
		}
	}
	return Map("cast", func(r Record) (Record, error) {
		out := make(Record, len(r))
		for k, v := range r {
			out[k] = v
		}
		for f, typ := range fields {
			v, ok := out[f]
			if !ok || v == nil {
				continue
			}
			c, err := castTypes[typ](v)
			if err != nil {
				return nil, fmt.Errorf("cast %s to %s: %w", f, typ, err)
			}
			out[f] = c
		}
		return out, nil
	}), nil
}

func buildFilter(s map[string]json.RawMessage) (Transform, error) {
	var where string
	if err := settingsOf(s, map[string]any{"where": &where}, "where"); err != nil {
		return Transform{}, err
	}
	e, err := parseExpr(where)
	if err != nil {
		return Transform{}, Errorf("where", "%v", err)
	}
	return Filter("filter", e.eval), nil
}

func buildDedupe(s map[string]json.RawMessage) (Transform, error) {
	var key []string
	if err := settingsOf(s, map[string]any{"key": &key}, "key"); err != nil {
		return Transform{}, err
	}
	if err := fieldList("key", key); err != nil {
		return Transform{}, err
	}
	return Transform{Name: "dedupe", Batch: func(_ context.Context, rs []Record) ([]Record, error) {
		seen := make(map[string]bool, len(rs))
		out := rs[:0:0]
		for _, r := range rs {
			parts := make([]any, len(key))
			for i, k := range key {
				parts[i] = r[k]
			}
			id, _ := json.Marshal(parts)
			if seen[string(id)] {
				continue
			}
			seen[string(id)] = true
			out = append(out, r)
		}
		return out, nil
	}}, nil
}
