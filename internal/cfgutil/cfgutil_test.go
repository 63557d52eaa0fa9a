package cfgutil_test

import (
	"cmp"
	"strings"
	"testing"
	"time"

	"github.com/dripflow/dripflow/internal/cfgutil"
)

func TestNotNegative(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{cfgutil.NotNegative("Concurrency", 0), ""},
		{cfgutil.NotNegative("Concurrency", 3), ""},
		{cfgutil.NotNegative("Concurrency", -1), "Concurrency must not be negative, got -1"},
		{cfgutil.NotNegative("LeaderTTL", -time.Second), "LeaderTTL must not be negative, got -1s"},
		{cmp.Or(cfgutil.NotNegative("A", 1), cfgutil.NotNegative("B", -2), cfgutil.NotNegative("C", -3)), "B must not be negative, got -2"},
	} {
		switch {
		case tt.want == "" && tt.err != nil:
			t.Errorf("got %v, want no error", tt.err)
		case tt.want != "" && (tt.err == nil || tt.err.Error() != tt.want):
			t.Errorf("got %v, want %q", tt.err, tt.want)
		}
	}
	if id := cfgutil.ProcessID(); !strings.Contains(id, ":") {
		t.Errorf("ProcessID() = %q, want host:pid", id)
	}
}
