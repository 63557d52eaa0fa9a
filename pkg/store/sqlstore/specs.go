package sqlstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/store"
)

// liveRunStates are the states of a run that keep its flow busy.
var liveRunStates = []string{
	string(store.RunScheduled), string(store.RunRunning), string(store.RunPaused), string(store.RunCancelling),
}

// lockIdleFlow serialises the changes that may give flow name a live run
// and then checks that it has none besides run except (0: none): it locks
// the flow's row in dripflow_flows (SQLite's transactions are serialised
// already) and looks for a run of kind flow of the definition in a live
// state through the index on (definition, state, id), returning a
// *store.FlowBusyError naming the oldest one. Every transaction that
// creates a flow run, moves one out of a terminal state or deletes a flow
// calls it before writing, so two of them for one flow cannot both pass.
//
// A flow run may name a definition without a flow row (a run created for a
// flow that was never registered, or deleted): nothing is locked then and
// the check still runs, so on PostgreSQL and MySQL two such creations
// racing each other may both pass. The runtime creates runs of registered
// flows only.
func (s *Store) lockIdleFlow(tx *gorm.DB, name string, except int64) error {
	var flow struct{ Name string }
	if _, err := findOne(s.forUpdate(tx.Table(flowsTable).Select("name").Where("name = ?", name)), &flow); err != nil {
		return err
	}
	var live struct {
		ID    int64
		State string
	}
	ok, err := findOne(tx.Table(runsTable).Select("id, state").
		Where("definition = ? AND state IN ? AND kind = ? AND id <> ?", name, liveRunStates, string(store.KindFlow), except).
		Order("id"), &live)
	if err != nil {
		return err
	}
	if ok {
		return &store.FlowBusyError{Flow: name, RunID: live.ID, State: store.RunState(live.State)}
	}
	return nil
}

// lockDefinition reads and locks a definition's row.
func (s *Store) lockDefinition(tx *gorm.DB, name string) (definitionRow, bool, error) {
	var row definitionRow
	ok, err := findOne(s.forUpdate(tx.Table(definitionsTable).Where("name = ?", name)), &row)
	return row, ok, err
}

// SaveFlowSpec stores a new version of a spec flow and its definition in one
// transaction. Creators of one name serialise on inserting the definition's
// row, updaters on its lock; the new version is one more than the highest
// stored for the name, so versions of a deleted flow are not reused.
func (s *Store) SaveFlowSpec(ctx context.Context, p store.SaveFlowSpec) (store.FlowSpec, error) {
	verb := "save"
	if p.Create {
		verb = "create"
	}
	if err := p.Validate(); err != nil {
		return store.FlowSpec{}, fmt.Errorf("%s flow spec %q: %w", verb, p.Name, err)
	}
	var out store.FlowSpec
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.clock()
		def, ok, err := s.lockDefinition(tx, p.Name)
		if err != nil {
			return err
		}
		switch {
		case p.Create && ok:
			return fmt.Errorf("a %s definition of that name exists: %w", originOf(def.Origin), store.ErrConflict)
		case p.Create:
			row := definitionRow{Name: p.Name, Kind: string(store.KindFlow), Origin: string(store.OriginSpec), Config: jsonText(p.Spec), UpdatedAt: now}
			res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).Create(&row)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return fmt.Errorf("it was created meanwhile: %w", store.ErrConflict)
			}
		case !ok:
			return store.ErrNotFound
		case originOf(def.Origin) != store.OriginSpec:
			return fmt.Errorf("it is defined in code, not as a spec: %w", store.ErrConflict)
		case p.IfVersion > 0 && def.Version != p.IfVersion:
			return fmt.Errorf("it is at version %d, not %d: %w", def.Version, p.IfVersion, store.ErrConflict)
		}
		var last *int64
		if err := tx.Raw("SELECT MAX(version) FROM "+specsTable+" WHERE name = ?", p.Name).Scan(&last).Error; err != nil {
			return err
		}
		version := int64(1)
		if last != nil {
			version = *last + 1
		}
		spec := specRow{
			Name: p.Name, Version: version, Spec: string(p.Spec), Description: p.Description,
			Defaults: jsonText(p.Defaults), CreatedBy: p.CreatedBy, CreatedAt: now,
		}
		if err := tx.Create(&spec).Error; err != nil {
			return err
		}
		err = tx.Table(definitionsTable).Where("name = ?", p.Name).Updates(map[string]any{
			"kind": string(store.KindFlow), "description": p.Description, "params_schema": nil,
			"defaults": jsonText(p.Defaults), "config": jsonText(p.Spec),
			"origin": string(store.OriginSpec), "version": version, "updated_at": now,
		}).Error
		if err != nil {
			return err
		}
		flow := flowRow{Name: p.Name, UpdatedAt: now}
		if err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).Create(&flow).Error; err != nil {
			return err
		}
		out = spec.spec()
		return nil
	})
	if err != nil {
		return store.FlowSpec{}, fmt.Errorf("%s flow spec %q: %w", verb, p.Name, err)
	}
	return out, nil
}

// GetFlowSpec returns one version of a spec flow (0: the latest), also of a
// deleted one; store.ErrNotFound when there is no such version.
func (s *Store) GetFlowSpec(ctx context.Context, name string, version int64) (store.FlowSpec, error) {
	if version < 0 {
		return store.FlowSpec{}, fmt.Errorf("get version %d of flow spec %q: %w", version, name,
			&store.ArgumentError{Field: "version", Message: fmt.Sprintf("must be 0 (latest) or more, got %d", version)})
	}
	q := s.db.WithContext(ctx).Table(specsTable).Where("name = ?", name)
	if version > 0 {
		q = q.Where("version = ?", version)
	} else {
		q = q.Order("version DESC")
	}
	var row specRow
	ok, err := findOne(q, &row)
	if err == nil && !ok {
		err = store.ErrNotFound
	}
	if err != nil {
		if version == 0 {
			return store.FlowSpec{}, fmt.Errorf("get latest version of flow spec %q: %w", name, err)
		}
		return store.FlowSpec{}, fmt.Errorf("get version %d of flow spec %q: %w", version, name, err)
	}
	return row.spec(), nil
}

// ListFlowSpecs returns a spec flow's versions, newest first.
func (s *Store) ListFlowSpecs(ctx context.Context, name string) ([]store.FlowSpec, error) {
	var rows []specRow
	if err := s.db.WithContext(ctx).Table(specsTable).Where("name = ?", name).Order("version DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list versions of flow spec %q: %w", name, err)
	}
	out := make([]store.FlowSpec, len(rows))
	for i, r := range rows {
		out[i] = r.spec()
	}
	return out, nil
}

// DeleteFlowSpec removes a spec flow's definition and state, keeping its
// versions and runs; refused while the flow has a live run.
func (s *Store) DeleteFlowSpec(ctx context.Context, name string) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		def, ok, err := s.lockDefinition(tx, name)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		if originOf(def.Origin) != store.OriginSpec {
			return fmt.Errorf("it is defined in code, not as a spec: %w", store.ErrConflict)
		}
		if err := s.lockIdleFlow(tx, name, 0); err != nil {
			return err
		}
		if err := tx.Exec("DELETE FROM "+flowsTable+" WHERE name = ?", name).Error; err != nil {
			return err
		}
		return tx.Exec("DELETE FROM "+definitionsTable+" WHERE name = ?", name).Error
	})
	if err != nil {
		return fmt.Errorf("delete flow spec %q: %w", name, err)
	}
	return nil
}

// RecordMissedTick counts a tick of the flow's runtime that came due while a
// run of it was live.
func (s *Store) RecordMissedTick(ctx context.Context, name string, at time.Time) (store.FlowState, error) {
	at = at.UTC().Truncate(time.Microsecond)
	var out store.FlowState
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, err := s.mustLockFlow(tx, name)
		if err != nil {
			return err
		}
		now := s.clock()
		row.MissedTicks, row.LastMissedTick, row.UpdatedAt = row.MissedTicks+1, &at, now
		err = tx.Table(flowsTable).Where("name = ?", name).Updates(map[string]any{
			"missed_ticks": gorm.Expr("missed_ticks + 1"), "last_missed_tick": at, "updated_at": now,
		}).Error
		if err != nil {
			return err
		}
		out = row.flow()
		return nil
	})
	if err != nil {
		return store.FlowState{}, fmt.Errorf("record missed tick of flow %q: %w", name, err)
	}
	return out, nil
}
