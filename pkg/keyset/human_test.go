package keyset_test

import (
	"testing"

	"github.com/dripflow/dripflow/pkg/keyset"
)

func TestHumanRange(t *testing.T) {
	for _, c := range []struct{ lo, hi, want string }{
		{"", "[1999]", "(start, 1999]"},
		{"[1999]", "[2999]", "(1999, 2999]"},
		{`[{"t":"2026-12-02T00:40:16Z"},1000]`, `[{"t":"2026-12-02T00:41:00Z"},7]`, "((2026-12-02 00:40:16Z, 1000), (2026-12-02 00:41:00Z, 7)]"},
		{`["a\"b"]`, `["c"]`, `("a\"b", "c"]`},
		{"17-0", "42-3", "(17-0, 42-3]"}, // a stream offset is not a key
	} {
		if got := keyset.HumanRange(c.lo, c.hi); got != c.want {
			t.Errorf("HumanRange(%q, %q) = %s, want %s", c.lo, c.hi, got, c.want)
		}
	}
}
