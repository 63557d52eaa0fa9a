package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// errSpecsTODO marks the flow-spec methods still being written.
var errSpecsTODO = errors.New("flow specs: not implemented yet")

// SaveFlowSpec stores a new version of a spec flow.
func (s *Store) SaveFlowSpec(ctx context.Context, p store.SaveFlowSpec) (store.FlowSpec, error) {
	return store.FlowSpec{}, errSpecsTODO
}

// GetFlowSpec returns one version of a spec flow.
func (s *Store) GetFlowSpec(ctx context.Context, name string, version int64) (store.FlowSpec, error) {
	return store.FlowSpec{}, errSpecsTODO
}

// ListFlowSpecs returns a spec flow's versions, newest first.
func (s *Store) ListFlowSpecs(ctx context.Context, name string) ([]store.FlowSpec, error) {
	return nil, errSpecsTODO
}

// DeleteFlowSpec removes a spec flow.
func (s *Store) DeleteFlowSpec(ctx context.Context, name string) error {
	return errSpecsTODO
}

// RecordMissedTick counts a tick skipped while a run was live.
func (s *Store) RecordMissedTick(ctx context.Context, name string, at time.Time) (store.FlowState, error) {
	return store.FlowState{}, errSpecsTODO
}
