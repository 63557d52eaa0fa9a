package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Go's encoding/json matches keys case-insensitively, lets a duplicate key
// overwrite the first silently and ignores what follows the first value
// unless asked. A request body is read here strictly instead: one JSON
// value, keys exactly as documented, each once.

// maxJSONDepth bounds the nesting of a body (as encoding/json does), so the
// walk below cannot run deep on "[[[[…".
const maxJSONDepth = 1000

// strictError is a body decodeStrict refused: status 400 when it is not
// one JSON value, 422 when a key is wrong (Field names it).
type strictError struct {
	Status  int
	Field   string
	Message string
}

func (e *strictError) Error() string { return e.Message }

func malformed(format string, args ...any) *strictError {
	return &strictError{Status: 400, Message: "malformed JSON body: " + fmt.Sprintf(format, args...)}
}

func invalidKey(field, format string, args ...any) *strictError {
	return &strictError{Status: 422, Field: field, Message: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes data, exactly one JSON value, into v. It refuses
// trailing data, duplicate keys (at any depth), NUL characters in strings
// (no database stores them), and keys that are not the exact JSON name of a
// field of v's struct types, saying which key. Type mismatches are
// returned as encoding/json's *json.UnmarshalTypeError.
func decodeStrict(data []byte, v any) error {
	if err := checkJSONTokens(data); err != nil {
		return err
	}
	if err := checkJSONKeys(data, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return err
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return invalidKey(f, "unknown field %q", f)
		}
		return malformed("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// checkJSONTokens walks data's tokens: one value, no duplicate keys, no
// NUL in strings, nothing after the value but white space.
func checkJSONTokens(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walkJSON(dec, "", 0); err != nil {
		if errors.Is(err, io.EOF) {
			return malformed("empty or truncated")
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("trailing data after the JSON value")
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func walkJSON(dec *json.Decoder, path string, depth int) error {
	if depth > maxJSONDepth {
		return malformed("nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return tokenErr(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return tokenErr(err)
				}
				key, ok := kt.(string)
				if !ok {
					return malformed("object key expected")
				}
				field := joinPath(path, key)
				if strings.ContainsRune(key, 0) {
					return invalidKey(path, "key %q contains a NUL character", key)
				}
				if seen[key] {
					return invalidKey(field, "duplicate key %q", field)
				}
				seen[key] = true
				if err := walkJSON(dec, field, depth+1); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walkJSON(dec, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
					return err
				}
			}
		default:
			return malformed("unexpected %q", t)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return tokenErr(err)
		}
	case string:
		if strings.ContainsRune(t, 0) {
			return invalidKey(path, "%s must not contain a NUL character", orBody(path))
		}
	}
	return nil
}

func orBody(path string) string {
	if path == "" {
		return "the body"
	}
	return path
}

func tokenErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed("empty or truncated")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return malformed("%s at offset %d", se.Error(), se.Offset)
	}
	return malformed("%s", strings.TrimPrefix(err.Error(), "json: "))
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkJSONKeys checks that each key of data's objects is the exact JSON
// name of a field of t (recursing into struct, slice and map types).
// Values of the wrong shape are left to encoding/json to report.
func checkJSONKeys(data []byte, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				field := joinPath(path, k)
				for name := range fields {
					if strings.EqualFold(name, k) {
						return invalidKey(field, "unknown field %q: keys are case-sensitive, did you mean %q?", field, joinPath(path, name))
					}
				}
				return invalidKey(field, "unknown field %q", field)
			}
			if err := checkJSONKeys(obj[k], ft, joinPath(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, it := range items {
			if err := checkJSONKeys(it, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return nil
		}
		for k, it := range obj {
			if err := checkJSONKeys(it, t.Elem(), joinPath(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's fields (with those of embedded
// structs) to their types, as encoding/json names them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
