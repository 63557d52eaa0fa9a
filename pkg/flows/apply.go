package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dripflow/dripflow/pkg/store"
)

// ReadSpecFile decodes a spec file by its extension: .yaml or .yml as
// YAML, .json as JSON. Errors are *FieldErrors as ParseSpec's.
func ReadSpecFile(name string, data []byte) (Spec, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return ParseSpecYAML(data)
	case ".json":
		return ParseSpec(data)
	}
	return Spec{}, fmt.Errorf("%s: a flow spec file ends in .yaml, .yml or .json", name)
}

// ErrDefinedInCode means a spec names a definition compiled into the
// binaries, which a spec cannot replace. It comes with store.ErrConflict.
var ErrDefinedInCode = errors.New("the definition is defined in code")

// ApplyResult says what Apply did.
type ApplyResult string

// Apply outcomes.
const (
	Created   ApplyResult = "created"
	Updated   ApplyResult = "updated"
	Unchanged ApplyResult = "unchanged"
)

// Apply makes the stored flow s.Name say what s says: it creates the flow,
// stores s as its new version when it differs from the latest, or does
// nothing when they are equal (compared as canonical JSON), so applying the
// same spec again, from any number of processes, changes nothing. A new
// version names the version it replaces (store.SaveFlowSpec.IfVersion):
// one changed concurrently is store.ErrConflict and nothing is stored. An
// invalid spec is a *FieldError; a definition of that name in code is
// ErrDefinedInCode (and store.ErrConflict).
func Apply(ctx context.Context, st store.Store, s Spec, createdBy string) (store.FlowSpec, ApplyResult, error) {
	rec, err := s.Record()
	if err != nil {
		return store.FlowSpec{}, "", err
	}
	rec.CreatedBy = createdBy
	d, err := st.GetDefinition(ctx, s.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec.Create = true
		fs, err := st.SaveFlowSpec(ctx, rec)
		if err != nil {
			return fs, "", fmt.Errorf("create flow %q: %w", s.Name, err)
		}
		return fs, Created, nil
	case err != nil:
		return store.FlowSpec{}, "", fmt.Errorf("read definition %q: %w", s.Name, err)
	case d.Origin != store.OriginSpec:
		return store.FlowSpec{}, "", fmt.Errorf("flow %q: %w; a spec cannot replace it (%w)", s.Name, ErrDefinedInCode, store.ErrConflict)
	}
	cur, err := st.GetFlowSpec(ctx, s.Name, d.Version)
	if err != nil {
		return store.FlowSpec{}, "", fmt.Errorf("read flow %q version %d: %w", s.Name, d.Version, err)
	}
	if sameSpec(cur.Spec, rec.Spec) && cur.Description == rec.Description {
		return cur, Unchanged, nil
	}
	rec.IfVersion = d.Version
	fs, err := st.SaveFlowSpec(ctx, rec)
	if err != nil {
		return fs, "", fmt.Errorf("update flow %q from version %d: %w", s.Name, d.Version, err)
	}
	return fs, Updated, nil
}

// sameSpec reports whether the stored spec a says what b says: both are
// read as specs and compared as canonical JSON, so spacing, key order and
// fields written with their zero value do not count.
func sameSpec(a, b json.RawMessage) bool {
	norm := func(raw json.RawMessage) json.RawMessage {
		if s, err := ParseSpec(raw); err == nil {
			if js, err := json.Marshal(s.canonical()); err == nil {
				return js
			}
		}
		return raw
	}
	return sameJSON(norm(a), norm(b))
}

// sameJSON reports whether a and b are the same JSON value, whatever their
// spacing and key order.
func sameJSON(a, b json.RawMessage) bool {
	ca, errA := canonicalJSON(a)
	cb, errB := canonicalJSON(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

func canonicalJSON(b json.RawMessage) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// canonical returns s with absent connector settings written as {}, as
// specs are stored and compared.
func (s Spec) canonical() Spec {
	for _, c := range []*ConnectorConfig{&s.Source, &s.Sink} {
		if t := bytes.TrimSpace(c.Settings); len(t) == 0 || string(t) == "null" {
			c.Settings = json.RawMessage("{}")
		}
	}
	return s
}
