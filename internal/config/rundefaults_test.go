package config

import (
	"strings"
	"testing"
	"time"
)

func TestRunDefaults(t *testing.T) {
	c, err := FromEnv(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultSleep != 0 || c.DefaultMaxInFlight != 0 || c.DefaultRowsPerSecond != 0 {
		t.Errorf("unset: %v, %d, %d; want none set", c.DefaultSleep, c.DefaultMaxInFlight, c.DefaultRowsPerSecond)
	}
	c, err = FromEnv(env(map[string]string{
		"DRIPFLOW_DEFAULT_SLEEP_MS": "100", "DRIPFLOW_DEFAULT_MAX_IN_FLIGHT": " 2 ", "DRIPFLOW_DEFAULT_ROWS_PER_SECOND": "5000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultSleep != 100*time.Millisecond || c.DefaultMaxInFlight != 2 || c.DefaultRowsPerSecond != 5000 {
		t.Errorf("set: %v, %d, %d; want 100ms, 2, 5000", c.DefaultSleep, c.DefaultMaxInFlight, c.DefaultRowsPerSecond)
	}
	// 0 is a value for sleep and rate (none, unlimited), not for in flight.
	if c, err = FromEnv(env(map[string]string{"DRIPFLOW_DEFAULT_SLEEP_MS": "0", "DRIPFLOW_DEFAULT_ROWS_PER_SECOND": "0"})); err != nil || c.DefaultSleep != 0 {
		t.Errorf("zeros: %v, %v", c.DefaultSleep, err)
	}
	for name, value := range map[string]string{
		"DRIPFLOW_DEFAULT_SLEEP_MS":        "-1",
		"DRIPFLOW_DEFAULT_MAX_IN_FLIGHT":   "0",
		"DRIPFLOW_DEFAULT_ROWS_PER_SECOND": "fast",
	} {
		_, err := FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), `"`+value+`"`) {
			t.Errorf("%s=%s: error %v should name the variable and the value", name, value, err)
		}
	}
	for name, value := range map[string]string{
		"DRIPFLOW_DEFAULT_SLEEP_MS":        "3600001", // above store.MaxSleep (1h)
		"DRIPFLOW_DEFAULT_MAX_IN_FLIGHT":   "10001",
		"DRIPFLOW_DEFAULT_ROWS_PER_SECOND": "10000001",
	} {
		_, err := FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), "between") {
			t.Errorf("%s=%s above the store's limit: %v", name, value, err)
		}
	}
}
