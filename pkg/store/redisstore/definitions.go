package redisstore

import (
	"context"
	"fmt"

	"github.com/dripflow/dripflow/pkg/store"
)

// UpsertDefinition creates or replaces a code definition's metadata and,
// for a flow, creates its state (inactive, no watermark) unless it exists.
// A flow stored as a spec is not replaced (store.ErrConflict).
func (s *Store) UpsertDefinition(ctx context.Context, d store.Definition) (store.Definition, error) {
	op := fmt.Sprintf("upsert definition %q", d.Name)
	if err := d.Validate(); err != nil {
		return store.Definition{}, fmt.Errorf("%s: %w", op, err)
	}
	if d.Origin != "" && d.Origin != store.OriginCode {
		return store.Definition{}, fmt.Errorf("%s of origin %q (save a spec flow with SaveFlowSpec): %w", op, d.Origin, store.ErrConflict)
	}
	_, reply, err := s.eval(ctx, upsertDefinitionScript, op,
		d.Name, string(d.Kind), d.Description, string(d.ParamsSchema), string(d.Defaults), string(d.Config))
	if err != nil {
		return store.Definition{}, err
	}
	return decodeDefinition(pairs(reply))
}

// GetDefinition returns one definition, or an error matching
// store.ErrNotFound.
func (s *Store) GetDefinition(ctx context.Context, name string) (store.Definition, error) {
	op := fmt.Sprintf("get definition %q", name)
	h, err := s.client.HGetAll(ctx, s.prefix+"def:"+name).Result()
	if err != nil {
		return store.Definition{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) == 0 {
		return store.Definition{}, fmt.Errorf("%s: definition %w", op, store.ErrNotFound)
	}
	return decodeDefinition(h)
}

// ListDefinitions returns every definition ordered by name.
func (s *Store) ListDefinitions(ctx context.Context) ([]store.Definition, error) {
	const op = "list definitions"
	hs, err := s.all(ctx, "defs", "def:")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]store.Definition, 0, len(hs))
	for _, h := range hs {
		d, err := decodeDefinition(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// GetFlow returns a flow's state, or an error matching store.ErrNotFound.
func (s *Store) GetFlow(ctx context.Context, name string) (store.FlowState, error) {
	op := fmt.Sprintf("get flow %q", name)
	h, err := s.client.HGetAll(ctx, s.prefix+"flow:"+name).Result()
	if err != nil {
		return store.FlowState{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) == 0 {
		return store.FlowState{}, fmt.Errorf("%s: flow %w", op, store.ErrNotFound)
	}
	return decodeFlow(h)
}

// ListFlows returns every flow's state ordered by name.
func (s *Store) ListFlows(ctx context.Context) ([]store.FlowState, error) {
	const op = "list flows"
	hs, err := s.all(ctx, "flows", "flow:")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]store.FlowState, 0, len(hs))
	for _, h := range hs {
		f, err := decodeFlow(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// all reads every hash named in the name-ordered index, in order.
func (s *Store) all(ctx context.Context, index, hashPrefix string) ([]map[string]string, error) {
	names, err := s.client.ZRange(ctx, s.prefix+index, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = s.prefix + hashPrefix + n
	}
	hs, err := hashes(ctx, s.client, keys)
	if err != nil {
		return nil, err
	}
	out := hs[:0]
	for _, h := range hs {
		if h != nil {
			out = append(out, h)
		}
	}
	return out, nil
}

// SetFlowActive activates or deactivates a flow; store.ErrNotFound for an
// unknown flow.
func (s *Store) SetFlowActive(ctx context.Context, name string, active bool) (store.FlowState, error) {
	op := fmt.Sprintf("set flow %q active=%t", name, active)
	_, reply, err := s.eval(ctx, setFlowActiveScript, op, name, boolArg(active))
	if err != nil {
		return store.FlowState{}, err
	}
	return decodeFlow(pairs(reply))
}

// AdvanceWatermark sets a flow's watermark to to if it is still from, else
// returns an error matching store.ErrConflict and changes nothing.
func (s *Store) AdvanceWatermark(ctx context.Context, name, from, to string) (store.FlowState, error) {
	op := fmt.Sprintf("advance watermark of flow %q", name)
	_, reply, err := s.eval(ctx, advanceWatermarkScript, op, name, from, to)
	if err != nil {
		return store.FlowState{}, err
	}
	return decodeFlow(pairs(reply))
}
