package sqlstore

import (
	"encoding/json"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// The row types map the tables column by column. Column names are explicit
// so that the naming strategy of a caller's *gorm.DB cannot change them, and
// gorm's automatic timestamps are off: the store sets every time itself.

type runRow struct {
	ID               int64      `gorm:"column:id;primaryKey;autoIncrement"`
	Definition       string     `gorm:"column:definition"`
	Kind             string     `gorm:"column:kind"`
	Params           string     `gorm:"column:params"`
	SpecVersion      int64      `gorm:"column:spec_version"`
	State            string     `gorm:"column:state"`
	CreatedBy        string     `gorm:"column:created_by"`
	BatchSize        int        `gorm:"column:batch_size"`
	MaxAttempts      int        `gorm:"column:max_attempts"`
	MaxInFlight      int        `gorm:"column:max_in_flight"`
	SleepNS          int64      `gorm:"column:sleep_ns"`
	RowsPerSecond    int        `gorm:"column:rows_per_second"`
	BatchTimeoutNS   int64      `gorm:"column:batch_timeout_ns"`
	ErrorBudget      int        `gorm:"column:error_budget"`
	HealthChecks     *string    `gorm:"column:health_checks"`
	Held             *string    `gorm:"column:held"`
	TargetBatchNS    int64      `gorm:"column:target_batch_ns"`
	MinBatchSize     int        `gorm:"column:min_batch_size"`
	MaxBatchSize     int        `gorm:"column:max_batch_size"`
	StartAt          *time.Time `gorm:"column:start_at"`
	Total            int64      `gorm:"column:total"`
	TotalEstimated   bool       `gorm:"column:total_estimated"`
	PlanCursor       string     `gorm:"column:plan_cursor"`
	PlanDone         bool       `gorm:"column:plan_done"`
	BatchesPending   int64      `gorm:"column:batches_pending"`
	BatchesEnqueued  int64      `gorm:"column:batches_enqueued"`
	BatchesRunning   int64      `gorm:"column:batches_running"`
	BatchesSucceeded int64      `gorm:"column:batches_succeeded"`
	BatchesFailed    int64      `gorm:"column:batches_failed"`
	BatchesCancelled int64      `gorm:"column:batches_cancelled"`
	RowsRead         int64      `gorm:"column:rows_read"`
	RowsWritten      int64      `gorm:"column:rows_written"`
	RowsSkipped      int64      `gorm:"column:rows_skipped"`
	Error            string     `gorm:"column:error"`
	CreatedAt        time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt        time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
	StartedAt        *time.Time `gorm:"column:started_at"`
	FinishedAt       *time.Time `gorm:"column:finished_at"`
}

func (runRow) TableName() string { return runsTable }

func (r runRow) run() store.Run {
	return store.Run{
		ID:          r.ID,
		Definition:  r.Definition,
		Kind:        store.Kind(r.Kind),
		Params:      json.RawMessage(r.Params),
		SpecVersion: r.SpecVersion,
		State:       store.RunState(r.State),
		CreatedBy:   r.CreatedBy,
		Options: store.RunOptions{
			BatchSize:     r.BatchSize,
			MaxAttempts:   r.MaxAttempts,
			MaxInFlight:   r.MaxInFlight,
			Sleep:         time.Duration(r.SleepNS),
			RowsPerSecond: r.RowsPerSecond,
			BatchTimeout:  time.Duration(r.BatchTimeoutNS),
			ErrorBudget:   r.ErrorBudget,
			HealthChecks:  decodeHealthChecks(r.HealthChecks),

			TargetBatchTime: time.Duration(r.TargetBatchNS),
			MinBatchSize:    r.MinBatchSize,
			MaxBatchSize:    r.MaxBatchSize,
		},
		Held:           decodeHold(r.Held),
		StartAt:        utcPtr(r.StartAt),
		Total:          r.Total,
		TotalEstimated: r.TotalEstimated,
		PlanCursor:     r.PlanCursor,
		PlanDone:       r.PlanDone,
		Counters: store.Counters{
			BatchesPending:   r.BatchesPending,
			BatchesEnqueued:  r.BatchesEnqueued,
			BatchesRunning:   r.BatchesRunning,
			BatchesSucceeded: r.BatchesSucceeded,
			BatchesFailed:    r.BatchesFailed,
			BatchesCancelled: r.BatchesCancelled,
			RowsRead:         r.RowsRead,
			RowsWritten:      r.RowsWritten,
			RowsSkipped:      r.RowsSkipped,
		},
		Error:      r.Error,
		CreatedAt:  r.CreatedAt.UTC(),
		UpdatedAt:  r.UpdatedAt.UTC(),
		StartedAt:  utcPtr(r.StartedAt),
		FinishedAt: utcPtr(r.FinishedAt),
	}
}

type batchRow struct {
	RunID       int64      `gorm:"column:run_id;primaryKey;autoIncrement:false"`
	Seq         int64      `gorm:"column:seq;primaryKey;autoIncrement:false"`
	State       string     `gorm:"column:state"`
	Lo          string     `gorm:"column:lo"`
	Hi          string     `gorm:"column:hi"`
	Size        int        `gorm:"column:planned_size"`
	Attempts    int        `gorm:"column:attempts"`
	Retries     int        `gorm:"column:retries"`
	Worker      string     `gorm:"column:worker"`
	ClaimToken  string     `gorm:"column:claim_token"`
	LeaseUntil  *time.Time `gorm:"column:lease_until"`
	RowsRead    int64      `gorm:"column:rows_read"`
	RowsWritten int64      `gorm:"column:rows_written"`
	RowsSkipped int64      `gorm:"column:rows_skipped"`
	DurationNS  int64      `gorm:"column:duration_ns"`
	Error       string     `gorm:"column:error"`
	ErrorStack  string     `gorm:"column:error_stack"`
	CreatedAt   time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt   time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
	EnqueuedAt  *time.Time `gorm:"column:enqueued_at"`
	StartedAt   *time.Time `gorm:"column:started_at"`
	FinishedAt  *time.Time `gorm:"column:finished_at"`
}

func (batchRow) TableName() string { return batchesTable }

func (b batchRow) batch() store.Batch {
	return store.Batch{
		RunID:       b.RunID,
		Seq:         b.Seq,
		State:       store.BatchState(b.State),
		Lo:          b.Lo,
		Hi:          b.Hi,
		Size:        b.Size,
		Attempts:    b.Attempts,
		Retries:     b.Retries,
		Worker:      b.Worker,
		ClaimToken:  b.ClaimToken,
		LeaseUntil:  utcPtr(b.LeaseUntil),
		RowsRead:    b.RowsRead,
		RowsWritten: b.RowsWritten,
		RowsSkipped: b.RowsSkipped,
		Duration:    time.Duration(b.DurationNS),
		Error:       b.Error,
		ErrorStack:  b.ErrorStack,
		CreatedAt:   b.CreatedAt.UTC(),
		UpdatedAt:   b.UpdatedAt.UTC(),
		EnqueuedAt:  utcPtr(b.EnqueuedAt),
		StartedAt:   utcPtr(b.StartedAt),
		FinishedAt:  utcPtr(b.FinishedAt),
	}
}

type definitionRow struct {
	Name         string    `gorm:"column:name;primaryKey"`
	Kind         string    `gorm:"column:kind"`
	Description  string    `gorm:"column:description"`
	ParamsSchema *string   `gorm:"column:params_schema"`
	Defaults     *string   `gorm:"column:defaults"`
	Config       *string   `gorm:"column:config"`
	Origin       string    `gorm:"column:origin"`
	Version      int64     `gorm:"column:version"`
	UpdatedAt    time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (definitionRow) TableName() string { return definitionsTable }

func (d definitionRow) definition() store.Definition {
	return store.Definition{
		Name:         d.Name,
		Kind:         store.Kind(d.Kind),
		Description:  d.Description,
		ParamsSchema: rawJSON(d.ParamsSchema),
		Defaults:     rawJSON(d.Defaults),
		Config:       rawJSON(d.Config),
		Origin:       originOf(d.Origin),
		Version:      d.Version,
		UpdatedAt:    d.UpdatedAt.UTC(),
	}
}

// originOf reads a definition's origin column; rows written before it
// existed are code.
func originOf(s string) store.Origin {
	if s == "" {
		return store.OriginCode
	}
	return store.Origin(s)
}

type flowRow struct {
	Name               string     `gorm:"column:name;primaryKey"`
	Active             bool       `gorm:"column:active"`
	Watermark          string     `gorm:"column:watermark"`
	WatermarkUpdatedAt *time.Time `gorm:"column:watermark_updated_at"`
	MissedTicks        int64      `gorm:"column:missed_ticks"`
	LastMissedTick     *time.Time `gorm:"column:last_missed_tick"`
	UpdatedAt          time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
}

func (flowRow) TableName() string { return flowsTable }

func (f flowRow) flow() store.FlowState {
	return store.FlowState{
		Name:               f.Name,
		Active:             f.Active,
		Watermark:          f.Watermark,
		WatermarkUpdatedAt: utcPtr(f.WatermarkUpdatedAt),
		MissedTicks:        f.MissedTicks,
		LastMissedTick:     utcPtr(f.LastMissedTick),
		UpdatedAt:          f.UpdatedAt.UTC(),
	}
}

type specRow struct {
	Name        string    `gorm:"column:name;primaryKey"`
	Version     int64     `gorm:"column:version;primaryKey;autoIncrement:false"`
	Spec        string    `gorm:"column:spec"`
	Description string    `gorm:"column:description"`
	Defaults    *string   `gorm:"column:defaults"`
	CreatedBy   string    `gorm:"column:created_by"`
	CreatedAt   time.Time `gorm:"column:created_at;autoCreateTime:false"`
}

func (specRow) TableName() string { return specsTable }

func (r specRow) spec() store.FlowSpec {
	return store.FlowSpec{
		Name:        r.Name,
		Version:     r.Version,
		Spec:        json.RawMessage(r.Spec),
		Description: r.Description,
		Defaults:    rawJSON(r.Defaults),
		CreatedBy:   r.CreatedBy,
		CreatedAt:   r.CreatedAt.UTC(),
	}
}

// utcPtr returns t in UTC, nil for nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// microUTC returns t as the store keeps it: UTC, microseconds.
func microUTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// jsonText stores a JSON document; empty means NULL.
func jsonText(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

// findOne reads at most one row into dest and reports whether there was one.
// Unlike First, a missing row is not an error (nor logged as one by a
// caller's logger).
func findOne(q *gorm.DB, dest any) (bool, error) {
	res := q.Limit(1).Find(dest)
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected > 0, nil
}

// encodeHealthChecks is the health_checks column of a run's checks (NULL
// for none).
func encodeHealthChecks(cs []store.HealthCheck) *string {
	if len(cs) == 0 {
		return nil
	}
	b, _ := json.Marshal(cs) // plain structs: cannot fail
	v := string(b)
	return &v
}

// decodeHealthChecks reads the health_checks column; the store wrote it,
// so what does not decode is taken as none.
func decodeHealthChecks(v *string) []store.HealthCheck {
	if v == nil || *v == "" {
		return nil
	}
	var cs []store.HealthCheck
	if json.Unmarshal([]byte(*v), &cs) != nil || len(cs) == 0 {
		return nil
	}
	return cs
}

// encodeHold is the held column of a run's hold (NULL for none).
func encodeHold(h *store.RunHold) *string {
	if h == nil {
		return nil
	}
	b, _ := json.Marshal(h.Normalize())
	v := string(b)
	return &v
}

// decodeHold reads the held column.
func decodeHold(v *string) *store.RunHold {
	if v == nil || *v == "" {
		return nil
	}
	var h store.RunHold
	if json.Unmarshal([]byte(*v), &h) != nil {
		return nil
	}
	h.Since = h.Since.UTC()
	return &h
}
