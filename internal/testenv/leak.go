package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks runs the package's tests (a TestMain calls it) and fails the
// package when a goroutine a test started is still running after the last
// test: a loop without shutdown, a server not closed, a subscription not
// cancelled. Goroutines of libraries that live as long as the process are
// ignored, and so are those in extra.
func VerifyNoLeaks(m *testing.M, extra ...goleak.Option) {
	opts := append([]goleak.Option{
		// database/sql's connection opener lives until its DB is closed;
		// gorm handles shared by a package's tests (testenv caches none,
		// but drivers register pools lazily) are closed by their
		// cleanups, yet a pool's opener may still be winding down.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	}, extra...)
	goleak.VerifyTestMain(m, opts...)
}
