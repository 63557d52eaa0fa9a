package examples

import "github.com/dripflow/dripflow/examples/demo"

// The demo schema, re-exported for the examples' users.
type (
	// User is the demo table users.
	User = demo.User
	// UserBackup is the demo table user_backups.
	UserBackup = demo.UserBackup
)

var (
	// Migrate creates the demo tables.
	Migrate = demo.Migrate
	// Seed inserts demo users.
	Seed = demo.Seed
	// NormalizeEmail is what fix_user_emails does to an address.
	NormalizeEmail = demo.NormalizeEmail
)
