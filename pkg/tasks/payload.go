package tasks

import (
	"encoding/json"
	"fmt"
)

func jsonPayload(p BatchPayload) ([]byte, error) {
	if p.RunID <= 0 || p.Seq <= 0 || p.Retry < 0 {
		return nil, fmt.Errorf("batch payload: run %d seq %d retry %d out of range", p.RunID, p.Seq, p.Retry)
	}
	if p.Rescue != "" && !validRescue(p.Rescue) {
		return nil, fmt.Errorf("batch payload: bad rescue %q", p.Rescue)
	}
	if p.Trace != "" && !validTraceparent(p.Trace) {
		return nil, fmt.Errorf("batch payload: bad trace %q", p.Trace)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode batch payload: %w", err)
	}
	return b, nil
}

// validTraceparent reports whether s is a W3C traceparent of version 00 as
// OpenTelemetry writes it: lower-case hex, trace and span ids not all zero.
func validTraceparent(s string) bool {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	hexNonZero := func(h string) bool {
		nonZero := false
		for i := 0; i < len(h); i++ {
			c := h[i]
			switch {
			case c == '0':
			case c >= '1' && c <= '9', c >= 'a' && c <= 'f':
				nonZero = true
			default:
				return false
			}
		}
		return nonZero
	}
	flags := s[53:55]
	return hexNonZero(s[3:35]) && hexNonZero(s[36:52]) && (flags == "00" || hexNonZero(flags))
}
