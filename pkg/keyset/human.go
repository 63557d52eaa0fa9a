package keyset

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Human shows a stored key as people read it: [1999] as 1999,
// [{"t":"2026-12-02T00:40:16Z"},1000] as (2026-12-02 00:40:16Z, 1000).
// Strings are quoted; what is not a key (a stream offset) shows as it is.
func Human(s string) string {
	k, err := Decode(s)
	if err != nil || len(k) == 0 {
		return s
	}
	parts := make([]string, len(k))
	for i, v := range k {
		switch v := v.(type) {
		case time.Time:
			parts[i] = v.UTC().Format("2006-01-02 15:04:05.999999999Z07:00")
		case string:
			parts[i] = strconv.Quote(v)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// HumanRange shows a batch's half-open key range (lo, hi] with Human keys;
// an empty lo (the first batch) reads "start".
func HumanRange(lo, hi string) string {
	if lo == "" {
		lo = "start"
	} else {
		lo = Human(lo)
	}
	return "(" + lo + ", " + Human(hi) + "]"
}
