package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// pairs turns a script's HGETALL reply (field, value, …) into a map.
func pairs(reply []any) map[string]string {
	h := make(map[string]string, len(reply)/2)
	for i := 0; i+1 < len(reply); i += 2 {
		k, _ := reply[i].(string)
		v, _ := reply[i+1].(string)
		h[k] = v
	}
	return h
}

// decoder reads typed fields from a hash and keeps the first error. An
// absent or empty field reads as the zero value.
type decoder struct {
	h   map[string]string
	err error
}

func (d *decoder) str(k string) string { return d.h[k] }

func (d *decoder) int64(k string) int64 {
	v := d.h[k]
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("field %s: %w", k, err)
	}
	return n
}

func (d *decoder) int(k string) int { return int(d.int64(k)) }

func (d *decoder) bool(k string) bool { return d.h[k] == "1" }

// duration reads nanoseconds.
func (d *decoder) duration(k string) time.Duration { return time.Duration(d.int64(k)) }

// time reads Unix microseconds.
func (d *decoder) time(k string) time.Time {
	if d.h[k] == "" {
		return time.Time{}
	}
	return time.UnixMicro(d.int64(k)).UTC()
}

func (d *decoder) timePtr(k string) *time.Time {
	if d.h[k] == "" {
		return nil
	}
	t := d.time(k)
	return &t
}

func (d *decoder) json(k string) json.RawMessage {
	if d.h[k] == "" {
		return nil
	}
	return json.RawMessage(d.h[k])
}

// healthChecks reads a run's checks (JSON; absent: none).
func (d *decoder) healthChecks(k string) []store.HealthCheck {
	if d.h[k] == "" {
		return nil
	}
	var cs []store.HealthCheck
	if err := json.Unmarshal([]byte(d.h[k]), &cs); err != nil && d.err == nil {
		d.err = fmt.Errorf("%s: %w", k, err)
	}
	if len(cs) == 0 {
		return nil
	}
	return cs
}

// hold reads a run's hold (JSON; absent: none).
func (d *decoder) hold(k string) *store.RunHold {
	if d.h[k] == "" {
		return nil
	}
	var h store.RunHold
	if err := json.Unmarshal([]byte(d.h[k]), &h); err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("%s: %w", k, err)
		}
		return nil
	}
	h.Since = h.Since.UTC()
	return &h
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// runFields are a new run's hash fields, without id.
func runFields(n store.NewRun) []any {
	params := string(n.Params)
	if len(n.Params) == 0 {
		params = "{}"
	}
	o := n.Options
	f := []any{
		"definition", n.Definition,
		"kind", string(n.Kind),
		"params", params,
		"spec_version", n.SpecVersion,
		"state", string(store.RunScheduled),
		"created_by", n.CreatedBy,
		"batch_size", o.BatchSize,
		"max_attempts", o.MaxAttempts,
		"max_in_flight", o.MaxInFlight,
		"sleep", int64(o.Sleep),
		"rows_per_second", o.RowsPerSecond,
		"batch_timeout", int64(o.BatchTimeout),
		"error_budget", o.ErrorBudget,
		"target_batch", int64(o.TargetBatchTime),
		"min_batch_size", o.MinBatchSize,
		"max_batch_size", o.MaxBatchSize,
		"total", -1,
		"total_estimated", "0",
		"plan_cursor", "",
		"plan_done", "0",
	}
	for _, st := range store.BatchStates {
		f = append(f, "batches_"+string(st), 0)
	}
	f = append(f, "rows_read", 0, "rows_written", 0, "rows_skipped", 0)
	if n.StartAt != nil {
		f = append(f, "start_at", micros(*n.StartAt))
	}
	if len(o.HealthChecks) > 0 {
		b, _ := json.Marshal(o.HealthChecks) // plain structs: cannot fail
		f = append(f, "health_checks", string(b))
	}
	return f
}

// decodeRun reads a run hash.
func decodeRun(h map[string]string) (store.Run, error) {
	d := &decoder{h: h}
	r := store.Run{
		ID:          d.int64("id"),
		Definition:  d.str("definition"),
		Kind:        store.Kind(d.str("kind")),
		Params:      d.json("params"),
		SpecVersion: d.int64("spec_version"),
		State:       store.RunState(d.str("state")),
		CreatedBy:   d.str("created_by"),
		Options: store.RunOptions{
			BatchSize:     d.int("batch_size"),
			MaxAttempts:   d.int("max_attempts"),
			MaxInFlight:   d.int("max_in_flight"),
			Sleep:         d.duration("sleep"),
			RowsPerSecond: d.int("rows_per_second"),
			BatchTimeout:  d.duration("batch_timeout"),
			ErrorBudget:   d.int("error_budget"),
			HealthChecks:  d.healthChecks("health_checks"),

			TargetBatchTime: d.duration("target_batch"),
			MinBatchSize:    d.int("min_batch_size"),
			MaxBatchSize:    d.int("max_batch_size"),
		},
		Held:           d.hold("held"),
		StartAt:        d.timePtr("start_at"),
		Total:          d.int64("total"),
		TotalEstimated: d.bool("total_estimated"),
		PlanCursor:     d.str("plan_cursor"),
		PlanDone:       d.bool("plan_done"),
		Counters: store.Counters{
			BatchesPending:   d.int64("batches_pending"),
			BatchesEnqueued:  d.int64("batches_enqueued"),
			BatchesRunning:   d.int64("batches_running"),
			BatchesSucceeded: d.int64("batches_succeeded"),
			BatchesFailed:    d.int64("batches_failed"),
			BatchesCancelled: d.int64("batches_cancelled"),
			RowsRead:         d.int64("rows_read"),
			RowsWritten:      d.int64("rows_written"),
			RowsSkipped:      d.int64("rows_skipped"),
		},
		Error:      d.str("error"),
		CreatedAt:  d.time("created_at"),
		UpdatedAt:  d.time("updated_at"),
		StartedAt:  d.timePtr("started_at"),
		FinishedAt: d.timePtr("finished_at"),
	}
	if d.err != nil {
		return store.Run{}, fmt.Errorf("decode run %s: %w", h["id"], d.err)
	}
	return r, nil
}

// decodeBatch reads a batch hash; the hash does not hold the batch's run id
// and seq, which are in its key.
func decodeBatch(runID, seq int64, h map[string]string) (store.Batch, error) {
	d := &decoder{h: h}
	b := store.Batch{
		RunID:       runID,
		Seq:         seq,
		State:       store.BatchState(d.str("state")),
		Lo:          d.str("lo"),
		Hi:          d.str("hi"),
		Size:        d.int("size"),
		Attempts:    d.int("attempts"),
		Retries:     d.int("retries"),
		Worker:      d.str("worker"),
		ClaimToken:  d.str("claim_token"),
		LeaseUntil:  d.timePtr("lease_until"),
		RowsRead:    d.int64("rows_read"),
		RowsWritten: d.int64("rows_written"),
		RowsSkipped: d.int64("rows_skipped"),
		Duration:    d.duration("duration"),
		Error:       d.str("error"),
		ErrorStack:  d.str("error_stack"),
		CreatedAt:   d.time("created_at"),
		UpdatedAt:   d.time("updated_at"),
		EnqueuedAt:  d.timePtr("enqueued_at"),
		StartedAt:   d.timePtr("started_at"),
		FinishedAt:  d.timePtr("finished_at"),
	}
	if d.err != nil {
		return store.Batch{}, fmt.Errorf("decode batch %s: %w", store.BatchID(runID, seq), d.err)
	}
	return b, nil
}

func decodeDefinition(h map[string]string) (store.Definition, error) {
	d := &decoder{h: h}
	def := store.Definition{
		Name:         d.str("name"),
		Kind:         store.Kind(d.str("kind")),
		Description:  d.str("description"),
		ParamsSchema: d.json("params_schema"),
		Defaults:     d.json("defaults"),
		Config:       d.json("config"),
		Origin:       store.OriginCode,
		Version:      d.int64("version"),
		UpdatedAt:    d.time("updated_at"),
	}
	if o := d.str("origin"); o != "" {
		def.Origin = store.Origin(o)
	}
	if d.err != nil {
		return store.Definition{}, fmt.Errorf("decode definition %q: %w", h["name"], d.err)
	}
	return def, nil
}

func decodeFlow(h map[string]string) (store.FlowState, error) {
	d := &decoder{h: h}
	f := store.FlowState{
		Name:               d.str("name"),
		Active:             d.bool("active"),
		Watermark:          d.str("watermark"),
		WatermarkUpdatedAt: d.timePtr("watermark_updated_at"),
		MissedTicks:        d.int64("missed_ticks"),
		LastMissedTick:     d.timePtr("last_missed_tick"),
		UpdatedAt:          d.time("updated_at"),
	}
	if d.err != nil {
		return store.FlowState{}, fmt.Errorf("decode flow %q: %w", h["name"], d.err)
	}
	return f, nil
}

func decodeFlowSpec(h map[string]string) (store.FlowSpec, error) {
	d := &decoder{h: h}
	f := store.FlowSpec{
		Name:        d.str("name"),
		Version:     d.int64("version"),
		Spec:        d.json("spec"),
		Description: d.str("description"),
		Defaults:    d.json("defaults"),
		CreatedBy:   d.str("created_by"),
		CreatedAt:   d.time("created_at"),
	}
	if d.err != nil {
		return store.FlowSpec{}, fmt.Errorf("decode version %s of flow spec %q: %w", h["version"], h["name"], d.err)
	}
	return f, nil
}
