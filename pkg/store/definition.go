package store

import (
	"encoding/json"
	"time"
)

// Definition is the persisted metadata of a registered backfill or flow, so
// that every process (and the UI) can show it and rebuild its configuration.
type Definition struct {
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Description string `json:"description"`
	// ParamsSchema describes the definition's typed params (JSON).
	ParamsSchema json.RawMessage `json:"params_schema"`
	// Defaults are the definition's default run options (JSON).
	Defaults json.RawMessage `json:"defaults"`
	// Config is a flow's connector configuration (JSON), empty for backfills.
	Config    json.RawMessage `json:"config"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Validate reports the first field of d that the store refuses.
func (d Definition) Validate() error {
	if d.Name == "" {
		return argErr("name", "must not be empty")
	}
	if len(d.Name) > 200 {
		return argErr("name", "must be at most 200 bytes")
	}
	if !d.Kind.Valid() {
		return argErr("kind", "must be %q or %q, got %q", KindBackfill, KindFlow, d.Kind)
	}
	for field, raw := range map[string]json.RawMessage{"params_schema": d.ParamsSchema, "defaults": d.Defaults, "config": d.Config} {
		if len(raw) > 0 && !json.Valid(raw) {
			return argErr(field, "must be valid JSON")
		}
	}
	return nil
}

// FlowState is a flow's persisted state: whether it is active and how far it
// has delivered. It exists for every registered definition of kind flow.
type FlowState struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
	// Watermark is the last key (or "updated_at, id") the flow delivered; ""
	// before the first delivery.
	Watermark          string     `json:"watermark"`
	WatermarkUpdatedAt *time.Time `json:"watermark_updated_at,omitempty"`
	UpdatedAt          time.Time  `json:"updated_at"`
}
