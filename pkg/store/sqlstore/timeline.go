package sqlstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// eventRow is a row of dripflow_run_events. ID counts 1, 2, … per run;
// EventKey is nil for an event without a key.
type eventRow struct {
	RunID     int64     `gorm:"column:run_id;primaryKey;autoIncrement:false"`
	ID        int64     `gorm:"column:id;primaryKey;autoIncrement:false"`
	CreatedAt time.Time `gorm:"column:created_at"`
	Kind      string    `gorm:"column:kind"`
	Actor     string    `gorm:"column:actor"`
	Batch     int64     `gorm:"column:batch"`
	Message   string    `gorm:"column:message"`
	EventKey  *string   `gorm:"column:event_key"`
}

func (r eventRow) event() store.RunEvent {
	e := store.RunEvent{
		ID:      r.ID,
		RunID:   r.RunID,
		At:      r.CreatedAt.UTC(),
		Kind:    store.EventKind(r.Kind),
		Actor:   r.Actor,
		Batch:   r.Batch,
		Message: r.Message,
	}
	if r.EventKey != nil {
		e.Key = *r.EventKey
	}
	return e
}

// AppendRunEvent appends an event to its run's timeline, or returns the
// run's event with the same key. The run's row is locked while the next id
// is taken, so a run's events commit in id order: a reader that has seen
// event n never misses an event below n committed later.
func (s *Store) AppendRunEvent(ctx context.Context, e store.RunEvent) (store.RunEvent, bool, error) {
	e, err := e.Normalize(s.clock())
	if err != nil {
		return store.RunEvent{}, false, fmt.Errorf("append event to run %d: %w", e.RunID, err)
	}
	if e.RunID <= 0 {
		return store.RunEvent{}, false, fmt.Errorf("append event to run %d: run %w", e.RunID, store.ErrNotFound)
	}
	var (
		out      store.RunEvent
		inserted bool
	)
	// Bookkeeping: an event lost in a crash of the database loses no work.
	err = s.inBookkeepingTx(ctx, func(tx *gorm.DB) error {
		inserted = false
		ok, err := s.lockRunForEvents(tx, e.RunID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("run %w", store.ErrNotFound)
		}
		var key *string
		if e.Key != "" {
			key = &e.Key
			var prev eventRow
			found, err := findOne(tx.Table(eventsTable).Where("run_id = ? AND event_key = ?", e.RunID, e.Key), &prev)
			if err != nil {
				return err
			}
			if found {
				out = prev.event()
				return nil
			}
		}
		var last *int64
		if err := tx.Raw("SELECT MAX(id) FROM "+eventsTable+" WHERE run_id = ?", e.RunID).Scan(&last).Error; err != nil {
			return err
		}
		row := eventRow{RunID: e.RunID, ID: 1, CreatedAt: e.At, Kind: string(e.Kind), Actor: e.Actor,
			Batch: e.Batch, Message: e.Message, EventKey: key}
		if last != nil {
			row.ID = *last + 1
		}
		if err := tx.Table(eventsTable).Create(&row).Error; err != nil {
			return err
		}
		if row.ID > s.maxEvents {
			if err := tx.Exec("DELETE FROM "+eventsTable+" WHERE run_id = ? AND id <= ?", e.RunID, row.ID-s.maxEvents).Error; err != nil {
				return err
			}
		}
		out, inserted = row.event(), true
		return nil
	})
	if err != nil {
		return store.RunEvent{}, false, fmt.Errorf("append %s event to run %d: %w", e.Kind, e.RunID, err)
	}
	return out, inserted, nil
}

// lockRunForEvents locks the run's row against other appends (outside
// SQLite, whose transactions hold the database's write lock) and reports
// whether the run exists. On PostgreSQL the lock is FOR NO KEY UPDATE, which
// claims (FOR KEY SHARE) do not wait for.
func (s *Store) lockRunForEvents(tx *gorm.DB, runID int64) (bool, error) {
	q := "SELECT id FROM " + runsTable + " WHERE id = ?"
	switch s.dialect {
	case dialectPostgres:
		q += " FOR NO KEY UPDATE"
	case dialectMySQL:
		q += " FOR UPDATE"
	}
	var ids []int64
	if err := tx.Raw(q, runID).Scan(&ids).Error; err != nil {
		return false, err
	}
	return len(ids) > 0, nil
}

// ListRunEvents returns the run's events after f.AfterID, oldest first.
func (s *Store) ListRunEvents(ctx context.Context, runID int64, f store.EventFilter) ([]store.RunEvent, error) {
	limit, err := f.Normalize()
	if err != nil {
		return nil, fmt.Errorf("list events of run %d: %w", runID, err)
	}
	db := s.db.WithContext(ctx)
	var rows []eventRow
	if err := db.Table(eventsTable).Where("run_id = ? AND id > ?", runID, f.AfterID).
		Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list events of run %d: %w", runID, err)
	}
	if len(rows) == 0 {
		var exists struct{ ID int64 }
		ok, err := findOne(db.Table(runsTable).Select("id").Where("id = ?", runID), &exists)
		if err != nil {
			return nil, fmt.Errorf("list events of run %d: %w", runID, err)
		}
		if !ok {
			return nil, fmt.Errorf("list events of run %d: run %w", runID, store.ErrNotFound)
		}
	}
	out := make([]store.RunEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}
