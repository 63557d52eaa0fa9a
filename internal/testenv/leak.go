package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// VerifyNoLeaks runs the package's tests (a TestMain calls it) and fails the
// package when a goroutine a test started is still running after the last
// test: a loop without shutdown, a server, Redis client or database not
// closed, a subscription not cancelled. extra adds goleak options (such as
// goleak.IgnoreTopFunction for a library goroutine that lives as long as
// the process); none is needed today: go-redis, asynq, asynqmon and
// database/sql all stop theirs when closed.
func VerifyNoLeaks(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, extra...)
}
