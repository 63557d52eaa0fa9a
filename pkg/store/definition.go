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
	// For a spec flow it is the spec of version Version.
	Config json.RawMessage `json:"config"`
	// Origin says where the definition comes from: OriginCode (compiled
	// into the binaries, read-only in the API and UI; "" reads as code) or
	// OriginSpec (a flow stored as data with SaveFlowSpec).
	Origin Origin `json:"origin"`
	// Version is a spec flow's latest version (0 for code definitions).
	Version   int64     `json:"version,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Origin says where a definition comes from.
type Origin string

// Definition origins.
const (
	OriginCode Origin = "code"
	OriginSpec Origin = "spec"
)

// FlowSpec is one stored version of a flow defined as data.
type FlowSpec struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	// Spec is the flow's spec as JSON (a flows.Spec).
	Spec        json.RawMessage `json:"spec"`
	Description string          `json:"description"`
	// Defaults are the spec's default run options (JSON, as
	// Definition.Defaults).
	Defaults  json.RawMessage `json:"defaults"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
}

// SaveFlowSpec is what Store.SaveFlowSpec needs.
type SaveFlowSpec struct {
	Name        string
	Description string
	// Spec is the flow's spec, a JSON object.
	Spec json.RawMessage
	// Defaults are its default run options (JSON object or empty).
	Defaults  json.RawMessage
	CreatedBy string
	// Create says the flow must not exist yet.
	Create bool
	// IfVersion, when > 0 (and not Create), is the version the flow must be
	// at: the version this one replaces.
	IfVersion int64
}

// Validate reports the first field of p that the store refuses.
func (p SaveFlowSpec) Validate() error {
	if p.Name == "" {
		return argErr("name", "must not be empty")
	}
	if len(p.Name) > 200 {
		return argErr("name", "must be at most 200 bytes")
	}
	if len(p.CreatedBy) > 200 {
		return argErr("created_by", "must be at most 200 bytes")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p.Spec, &obj); err != nil || obj == nil {
		return argErr("spec", "must be a JSON object")
	}
	if len(p.Defaults) > 0 && !json.Valid(p.Defaults) {
		return argErr("defaults", "must be valid JSON")
	}
	if p.IfVersion < 0 {
		return argErr("if_version", "must not be negative, got %d", p.IfVersion)
	}
	return nil
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
	// MissedTicks counts the runtime ticks that came due while a run of the
	// flow was still live (see Store.RecordMissedTick); LastMissedTick is
	// the latest.
	MissedTicks    int64      `json:"missed_ticks"`
	LastMissedTick *time.Time `json:"last_missed_tick,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}
