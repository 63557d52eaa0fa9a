package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dripflow/dripflow/pkg/client"
	"github.com/dripflow/dripflow/pkg/params"
)

// paramList is the repeatable --param NAME=VALUE flag of `runs start`.
type paramList []string

func (p *paramList) String() string { return strings.Join(*p, " ") }

func (p *paramList) Set(v string) error {
	name, _, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want NAME=VALUE or NAME=@FILE, got %q", v)
	}
	*p = append(*p, v)
	return nil
}

// merge adds the --param values to the --params object raw (nil: {}) and
// returns the result. NAME=@FILE takes the file's text (a CSV param's
// rows); "@@" starts a value that begins with "@". A value is sent as the
// param's type wants it, read from the definition's schema: a number, true
// or false, else text (a server that cannot be asked gets text, and says
// what it refuses).
func (p paramList) merge(ctx context.Context, c *client.Client, definition string, raw json.RawMessage) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("--params must be a JSON object to add --param values to")
		}
	}
	types := map[string]string{}
	if defs, err := c.Definitions(ctx); err == nil {
		for _, d := range defs {
			if d.Name == definition {
				for _, f := range d.Params.Fields {
					types[f.Name] = f.Type
				}
			}
		}
	}
	for _, v := range p {
		name, value, _ := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		switch {
		case strings.HasPrefix(value, "@@"):
			value = value[1:]
		case strings.HasPrefix(value, "@"):
			path := value[1:]
			info, err := os.Stat(path)
			if err != nil {
				return nil, fmt.Errorf("--param %s: %v", name, err)
			}
			if info.Size() > params.MaxCSVBytes {
				return nil, fmt.Errorf("--param %s: %s is %s bytes; a file param holds at most %s bytes", name, path, thousands(info.Size()), thousands(params.MaxCSVBytes))
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("--param %s: %v", name, err)
			}
			value = string(b)
		}
		var enc []byte
		switch types[name] {
		case params.TypeInteger, params.TypeNumber:
			if _, err := strconv.ParseFloat(value, 64); err != nil {
				return nil, fmt.Errorf("--param %s: must be a number, not %q", name, value)
			}
			enc = []byte(value)
		case params.TypeBoolean:
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("--param %s: must be true or false, not %q", name, value)
			}
			enc, _ = json.Marshal(b)
		default:
			enc = jsonString(value)
		}
		obj[name] = enc
	}
	return marshalNoEscape(obj)
}

// jsonString encodes s as a JSON string without escaping <, > and &, which
// would make a CSV's text up to six times longer on the wire.
func jsonString(s string) []byte {
	b, _ := marshalNoEscape(s)
	return b
}

func marshalNoEscape(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(sb.String(), "\n")), nil
}
