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
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode batch payload: %w", err)
	}
	return b, nil
}
