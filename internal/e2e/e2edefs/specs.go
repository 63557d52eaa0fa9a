package e2edefs

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dripflow/dripflow/pkg/flows"
)

// SlowTransform is a transform type spec flows can name: it sleeps
// sleep_ms once per batch, so a test can slow a run down (kill a worker
// mid-run, make a run outlast its heartbeat) without code of its own:
//
//	{"type": "e2e_slow", "sleep_ms": 300}
const SlowTransform = "e2e_slow"

func init() {
	flows.RegisterTransform(SlowTransform, func(settings map[string]json.RawMessage) (flows.Transform, error) {
		var ms int
		for k, raw := range settings {
			if k != "sleep_ms" {
				return flows.Transform{}, flows.Errorf(k, "is not a setting of e2e_slow (settings: sleep_ms)")
			}
			if err := json.Unmarshal(raw, &ms); err != nil || ms < 0 {
				return flows.Transform{}, flows.Errorf("sleep_ms", "must be a non-negative integer")
			}
		}
		d := time.Duration(ms) * time.Millisecond
		return flows.Transform{Batch: func(ctx context.Context, rs []flows.Record) ([]flows.Record, error) {
			select {
			case <-time.After(d):
				return rs, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}, nil
	})
}
