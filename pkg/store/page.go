package store

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Page sizes of the list calls.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// RunFilter selects runs for ListRuns. Runs come newest first.
type RunFilter struct {
	States     []RunState // any of these; empty means all
	Definition string     // exact name; empty means all
	CreatedBy  string     // exact identity; empty means all
	Kind       Kind       // KindBackfill or KindFlow; empty means both
	Limit      int        // 0 means DefaultLimit; at most MaxLimit
	Cursor     string     // NextCursor of the previous page; "" for the first
}

// BatchFilter selects a run's batches for ListBatches. Batches come in key
// order (by Seq).
type BatchFilter struct {
	States []BatchState
	Limit  int
	Cursor string
}

// Page is one page of a keyset-paginated list. NextCursor is "" on the last
// page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

const cursorPrefix = "k1:"

// EncodeCursor turns the last key of a page into an opaque cursor.
func EncodeCursor(key int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(key, 10)))
}

// DecodeCursor parses a cursor made by EncodeCursor. "" decodes to 0, ok false.
func DecodeCursor(c string) (key int64, ok bool, err error) {
	if c == "" {
		return 0, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(raw), cursorPrefix) {
		return 0, false, argErr("cursor", "malformed cursor")
	}
	key, err = strconv.ParseInt(strings.TrimPrefix(string(raw), cursorPrefix), 10, 64)
	if err != nil || key < 0 {
		return 0, false, argErr("cursor", "malformed cursor")
	}
	return key, true, nil
}

// NormalizeLimit applies the default and refuses out-of-range limits.
func NormalizeLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultLimit, nil
	case limit < 0 || limit > MaxLimit:
		return 0, argErr("limit", "must be between 1 and %d, got %d", MaxLimit, limit)
	}
	return limit, nil
}

// Validate checks the filter's states, kind, limit and cursor.
func (f RunFilter) Validate() error {
	for _, s := range f.States {
		if !s.Valid() {
			return argErr("status", "unknown run state %q", s)
		}
	}
	if f.Kind != "" && !f.Kind.Valid() {
		return argErr("kind", "must be %q or %q, got %q", KindBackfill, KindFlow, f.Kind)
	}
	if _, err := NormalizeLimit(f.Limit); err != nil {
		return err
	}
	_, _, err := DecodeCursor(f.Cursor)
	return err
}

// Validate checks the filter's states, limit and cursor.
func (f BatchFilter) Validate() error {
	for _, s := range f.States {
		if !s.Valid() {
			return argErr("status", "unknown batch state %q", s)
		}
	}
	if _, err := NormalizeLimit(f.Limit); err != nil {
		return err
	}
	_, _, err := DecodeCursor(f.Cursor)
	return err
}
