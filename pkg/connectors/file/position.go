package file

import (
	"encoding/json"
	"fmt"
)

// position is where a source stands: every record of the files ordered
// before Name, and of Name up to byte Offset, has been read. The zero
// position ("" encoded) is the beginning.
type position struct {
	Name   string
	Offset int64
}

// encode returns the position as the opaque string flows keep: the JSON
// array [name, offset].
func (p position) encode() string {
	b, _ := json.Marshal([]any{p.Name, p.Offset})
	return string(b)
}

// decodePosition parses a position encoded by encode; "" is the beginning.
func decodePosition(s string) (position, error) {
	if s == "" {
		return position{}, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil || len(raw) != 2 {
		return position{}, fmt.Errorf("file position %q: want [name, offset]", s)
	}
	var p position
	if err := json.Unmarshal(raw[0], &p.Name); err != nil || p.Name == "" {
		return position{}, fmt.Errorf("file position %q: the name must be a non-empty string", s)
	}
	if err := json.Unmarshal(raw[1], &p.Offset); err != nil || p.Offset < 0 {
		return position{}, fmt.Errorf("file position %q: the offset must be a non-negative integer", s)
	}
	return p, nil
}
