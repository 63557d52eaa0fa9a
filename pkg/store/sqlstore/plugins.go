package sqlstore

import (
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// Use registers a gorm plugin (such as gorm's OpenTelemetry tracing) on
// every connection pool of the store: DB's, and those of the store's own
// writes and bookkeeping when Open made them. A pool that has the plugin
// already (DB shared with the application) keeps it.
func (s *Store) Use(p gorm.Plugin) error {
	for _, db := range []*gorm.DB{s.db, s.wdb, s.adb} {
		if db == nil {
			continue
		}
		if err := db.Use(p); err != nil && !errors.Is(err, gorm.ErrRegistered) {
			return fmt.Errorf("sqlstore: use %s: %w", p.Name(), err)
		}
	}
	return nil
}
