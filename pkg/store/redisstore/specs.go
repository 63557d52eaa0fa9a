package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// SaveFlowSpec stores a new version of a spec flow and its definition in one
// script (see save_flow_spec.lua).
func (s *Store) SaveFlowSpec(ctx context.Context, p store.SaveFlowSpec) (store.FlowSpec, error) {
	op := fmt.Sprintf("save flow spec %q", p.Name)
	if p.Create {
		op = fmt.Sprintf("create flow spec %q", p.Name)
	}
	if err := p.Validate(); err != nil {
		return store.FlowSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	_, reply, err := s.eval(ctx, saveFlowSpecScript, op,
		p.Name, p.Description, string(p.Spec), string(p.Defaults), p.CreatedBy, boolArg(p.Create), p.IfVersion)
	if err != nil {
		return store.FlowSpec{}, err
	}
	return decodeFlowSpec(pairs(reply))
}

// GetFlowSpec returns one version of a spec flow (0: the latest), also of a
// deleted one; store.ErrNotFound when there is no such version. Versions
// never change once stored, so reading the latest number and then its hash
// needs no script.
func (s *Store) GetFlowSpec(ctx context.Context, name string, version int64) (store.FlowSpec, error) {
	op := fmt.Sprintf("get version %d of flow spec %q", version, name)
	if version < 0 {
		return store.FlowSpec{}, fmt.Errorf("%s: %w", op,
			&store.ArgumentError{Field: "version", Message: fmt.Sprintf("must be 0 (latest) or more, got %d", version)})
	}
	if version == 0 {
		op = fmt.Sprintf("get latest version of flow spec %q", name)
		last, err := s.client.ZRange(ctx, s.specsKey(name), -1, -1).Result()
		if err != nil {
			return store.FlowSpec{}, fmt.Errorf("%s: %w", op, err)
		}
		if len(last) == 0 {
			return store.FlowSpec{}, fmt.Errorf("%s: version %w", op, store.ErrNotFound)
		}
		if version, err = strconv.ParseInt(last[0], 10, 64); err != nil {
			return store.FlowSpec{}, fmt.Errorf("%s: bad version %q in %s", op, last[0], s.specsKey(name))
		}
	}
	h, err := s.client.HGetAll(ctx, s.specKey(name, version)).Result()
	if err != nil {
		return store.FlowSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) == 0 {
		return store.FlowSpec{}, fmt.Errorf("%s: version %w", op, store.ErrNotFound)
	}
	f, err := decodeFlowSpec(h)
	if err != nil {
		return store.FlowSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	return f, nil
}

// ListFlowSpecs returns a spec flow's versions, newest first.
func (s *Store) ListFlowSpecs(ctx context.Context, name string) ([]store.FlowSpec, error) {
	op := fmt.Sprintf("list versions of flow spec %q", name)
	versions, err := s.client.ZRevRange(ctx, s.specsKey(name), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	keys := make([]string, len(versions))
	for i, v := range versions {
		keys[i] = s.prefix + "spec:" + name + ":" + v
	}
	hs, err := hashes(ctx, s.client, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]store.FlowSpec, 0, len(hs))
	for _, h := range hs {
		if h == nil {
			continue
		}
		f, err := decodeFlowSpec(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// DeleteFlowSpec removes a spec flow's definition and state, keeping its
// versions and runs; refused while the flow has a live run.
func (s *Store) DeleteFlowSpec(ctx context.Context, name string) error {
	_, _, err := s.eval(ctx, deleteFlowSpecScript, fmt.Sprintf("delete flow spec %q", name), name)
	return err
}

// RecordMissedTick counts a tick of the flow's runtime that came due while a
// run of it was live.
func (s *Store) RecordMissedTick(ctx context.Context, name string, at time.Time) (store.FlowState, error) {
	op := fmt.Sprintf("record missed tick of flow %q", name)
	_, reply, err := s.eval(ctx, recordMissedTickScript, op, name, micros(at))
	if err != nil {
		return store.FlowState{}, err
	}
	return decodeFlow(pairs(reply))
}

func (s *Store) specsKey(name string) string { return s.prefix + "specs:" + name }

func (s *Store) specKey(name string, version int64) string {
	return s.prefix + "spec:" + name + ":" + strconv.FormatInt(version, 10)
}
