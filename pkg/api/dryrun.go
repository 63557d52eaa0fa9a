package api

import "encoding/json"

// DryRun is the answer of POST /api/v1/runs with "dry_run": true: the
// run's first batches, each tried in a transaction that was rolled back.
// No run was created and nothing was changed.
type DryRun struct {
	Definition string          `json:"definition"`
	Params     json.RawMessage `json:"params"`
	BatchSize  int             `json:"batch_size"`
	// Batches are the first key ranges the run would plan, in order.
	Batches []DryRunBatch `json:"batches"`
	// More says the run would plan batches after these.
	More bool `json:"more"`
	// Sampled says the definition's form shows rows before and after
	// (backfills); flows show counts only.
	Sampled bool `json:"sampled"`
	// TimedOut says the dry run's time limit cut it short.
	TimedOut   bool  `json:"timed_out,omitempty"`
	DurationMS int64 `json:"duration_ms"`
}

// DryRunBatch is one batch of a dry run.
type DryRunBatch struct {
	Seq int64  `json:"seq"`
	Lo  string `json:"lo"`
	Hi  string `json:"hi"`
	// Rows are what the batch read, would have written (changed) and
	// skipped.
	Rows       Rows   `json:"rows"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
	// Leaked says rows were found changed after the rollback: the
	// definition writes outside the transaction it is given.
	Leaked bool        `json:"leaked,omitempty"`
	Sample []DryRunRow `json:"sample,omitempty"`
}

// DryRunRow is one sampled row before and after its batch.
type DryRunRow struct {
	Key    string         `json:"key"`
	Before map[string]any `json:"before"`
	// After is null when the batch deleted the row.
	After   map[string]any `json:"after"`
	Deleted bool           `json:"deleted,omitempty"`
	Changed []string       `json:"changed"`
}
