package sqlstore

import (
	"context"

	"gorm.io/gorm"
)

// OpenDB opens a gorm database from a URL of the forms Open accepts, without
// a store on it: the application database that jobs read and write when the
// store lives elsewhere (the Redis store). maxOpen bounds its pool (0: the
// default).
func OpenDB(ctx context.Context, databaseURL string, maxOpen int) (*gorm.DB, error) {
	db, _, err := openURL(ctx, databaseURL, maxOpen)
	return db, err
}
