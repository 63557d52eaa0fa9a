// Package cfgutil holds what the components' Config types share for
// WithDefaults and validate: the default process id and the check that a
// count or duration is not negative.
package cfgutil

import (
	"fmt"
	"os"
	"strconv"
)

// ProcessID is the default id of a worker or scheduler: host:pid.
func ProcessID() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}

// NotNegative returns an error naming the field when v is negative. Combine
// several with cmp.Or, which returns the first error.
func NotNegative[T ~int | ~int64](field string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s must not be negative, got %v", field, v)
	}
	return nil
}
