package sqlstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/store"
)

// UpsertDefinition creates or replaces a code definition's metadata; for a
// flow it also creates the flow's state (inactive, no watermark) if missing
// and keeps it otherwise. A spec definition is not replaced (ErrConflict):
// its row is read under lock first, and one created meanwhile makes the
// insert do nothing and the check run again.
func (s *Store) UpsertDefinition(ctx context.Context, d store.Definition) (store.Definition, error) {
	if err := d.Validate(); err != nil {
		return store.Definition{}, fmt.Errorf("upsert definition %q: %w", d.Name, err)
	}
	if d.Origin != "" && d.Origin != store.OriginCode {
		return store.Definition{}, fmt.Errorf("upsert definition %q of origin %q (save a spec flow with SaveFlowSpec): %w", d.Name, d.Origin, store.ErrConflict)
	}
	var out store.Definition
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		now := s.clock()
		row := definitionRow{
			Name:         d.Name,
			Kind:         string(d.Kind),
			Description:  d.Description,
			ParamsSchema: jsonText(d.ParamsSchema),
			Defaults:     jsonText(d.Defaults),
			Config:       jsonText(d.Config),
			Origin:       string(store.OriginCode),
			UpdatedAt:    now,
		}
		for written := false; !written; {
			existing, ok, err := s.lockDefinition(tx, d.Name)
			if err != nil {
				return err
			}
			if ok {
				if originOf(existing.Origin) == store.OriginSpec {
					return fmt.Errorf("it is a flow stored as a spec (version %d): %w", existing.Version, store.ErrConflict)
				}
				err := tx.Table(definitionsTable).Where("name = ?", d.Name).Updates(map[string]any{
					"kind": row.Kind, "description": row.Description, "params_schema": row.ParamsSchema,
					"defaults": row.Defaults, "config": row.Config, "origin": row.Origin, "version": 0, "updated_at": now,
				}).Error
				if err != nil {
					return err
				}
				break
			}
			res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).Create(&row)
			if res.Error != nil {
				return res.Error
			}
			written = res.RowsAffected > 0
		}
		if d.Kind == store.KindFlow {
			flow := flowRow{Name: d.Name, UpdatedAt: now}
			err := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoNothing: true}).Create(&flow).Error
			if err != nil {
				return err
			}
		}
		// Read back what the database kept (PostgreSQL normalises JSONB).
		var stored definitionRow
		if _, err := findOne(tx.Table(definitionsTable).Where("name = ?", d.Name), &stored); err != nil {
			return err
		}
		out = stored.definition()
		return nil
	})
	if err != nil {
		return store.Definition{}, fmt.Errorf("upsert definition %q: %w", d.Name, err)
	}
	return out, nil
}

// GetDefinition returns one definition, or store.ErrNotFound.
func (s *Store) GetDefinition(ctx context.Context, name string) (store.Definition, error) {
	var row definitionRow
	ok, err := findOne(s.db.WithContext(ctx).Table(definitionsTable).Where("name = ?", name), &row)
	if err != nil {
		return store.Definition{}, fmt.Errorf("get definition %q: %w", name, err)
	}
	if !ok {
		return store.Definition{}, fmt.Errorf("get definition %q: %w", name, store.ErrNotFound)
	}
	return row.definition(), nil
}

// ListDefinitions returns every definition ordered by name.
func (s *Store) ListDefinitions(ctx context.Context) ([]store.Definition, error) {
	var rows []definitionRow
	if err := s.db.WithContext(ctx).Table(definitionsTable).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	out := make([]store.Definition, len(rows))
	for i, r := range rows {
		out[i] = r.definition()
	}
	return out, nil
}

// GetFlow returns a flow's state, or store.ErrNotFound.
func (s *Store) GetFlow(ctx context.Context, name string) (store.FlowState, error) {
	var row flowRow
	ok, err := findOne(s.db.WithContext(ctx).Table(flowsTable).Where("name = ?", name), &row)
	if err != nil {
		return store.FlowState{}, fmt.Errorf("get flow %q: %w", name, err)
	}
	if !ok {
		return store.FlowState{}, fmt.Errorf("get flow %q: %w", name, store.ErrNotFound)
	}
	return row.flow(), nil
}

// ListFlows returns every flow's state ordered by name.
func (s *Store) ListFlows(ctx context.Context) ([]store.FlowState, error) {
	var rows []flowRow
	if err := s.db.WithContext(ctx).Table(flowsTable).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	out := make([]store.FlowState, len(rows))
	for i, r := range rows {
		out[i] = r.flow()
	}
	return out, nil
}

// SetFlowActive activates or deactivates a flow; store.ErrNotFound for an
// unknown flow.
func (s *Store) SetFlowActive(ctx context.Context, name string, active bool) (store.FlowState, error) {
	verb := "deactivate"
	if active {
		verb = "activate"
	}
	var out store.FlowState
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, err := s.mustLockFlow(tx, name)
		if err != nil {
			return err
		}
		now := s.clock()
		row.Active, row.UpdatedAt = active, now
		if err := tx.Table(flowsTable).Where("name = ?", name).Updates(map[string]any{"active": active, "updated_at": now}).Error; err != nil {
			return err
		}
		out = row.flow()
		return nil
	})
	if err != nil {
		return store.FlowState{}, fmt.Errorf("%s flow %q: %w", verb, name, err)
	}
	return out, nil
}

// AdvanceWatermark sets a flow's watermark to to if it is still from, else
// returns an error matching store.ErrConflict and changes nothing.
func (s *Store) AdvanceWatermark(ctx context.Context, name, from, to string) (store.FlowState, error) {
	var out store.FlowState
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, err := s.mustLockFlow(tx, name)
		if err != nil {
			return err
		}
		if row.Watermark != from {
			return fmt.Errorf("watermark is %q, not %q: %w", row.Watermark, from, store.ErrConflict)
		}
		now := s.clock()
		row.Watermark, row.WatermarkUpdatedAt, row.UpdatedAt = to, &now, now
		err = tx.Table(flowsTable).Where("name = ?", name).Updates(map[string]any{
			"watermark": to, "watermark_updated_at": now, "updated_at": now,
		}).Error
		if err != nil {
			return err
		}
		out = row.flow()
		return nil
	})
	if err != nil {
		return store.FlowState{}, fmt.Errorf("advance watermark of flow %q: %w", name, err)
	}
	return out, nil
}

// mustLockFlow reads and locks a flow's row; store.ErrNotFound if missing.
func (s *Store) mustLockFlow(tx *gorm.DB, name string) (flowRow, error) {
	var row flowRow
	ok, err := findOne(s.forUpdate(tx.Table(flowsTable).Where("name = ?", name)), &row)
	if err != nil {
		return flowRow{}, err
	}
	if !ok {
		return flowRow{}, store.ErrNotFound
	}
	return row, nil
}
