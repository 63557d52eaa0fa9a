package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// TypeBatch is the asynq task type of a batch.
const TypeBatch = "dripflow:batch"

// DefaultQueue and DefaultRetention are the older names of QueueDefault and
// RetentionDefault.
const (
	DefaultQueue     = "dripflow"
	DefaultRetention = 24 * time.Hour
)

// BatchPayload is the payload of a batch task. It names the batch; everything
// else is read from the store when the task runs.
type BatchPayload struct {
	RunID      int64  `json:"run"`
	Seq        int64  `json:"seq"`
	Retry      int    `json:"retry,omitempty"`
	Definition string `json:"def,omitempty"`
	// Rescue is set on a task that replaces one stuck with a dead worker:
	// "r<attempt>" for a batch whose claim by that attempt expired,
	// "e<attempts>" for a batch a dead worker dequeued but never claimed.
	Rescue string `json:"rescue,omitempty"`
	// Trace is the W3C traceparent of the span that enqueued the task
	// (the run's trace, see package tracing), empty when tracing is off.
	// It is not part of the task id. A payload whose trace is not a
	// version-00 traceparent decodes without it: a batch never fails for
	// its trace.
	Trace string `json:"trace,omitempty"`
}

// TaskID returns the deterministic task id of the payload's batch. A rescue
// task gets the suffix ":<rescue>" so it cannot collide with the task it
// replaces, and two reconcilers cannot both rescue the same attempt.
func (p BatchPayload) TaskID() string {
	id := TaskID(p.RunID, p.Seq, p.Retry)
	if p.Rescue != "" {
		id += ":" + p.Rescue
	}
	return id
}

// TaskID returns "<run>:<seq>", or "<run>:<seq>:<retry>" once the batch was
// retried by hand.
func TaskID(runID, seq int64, retry int) string {
	if retry > 0 {
		return fmt.Sprintf("%d:%d:%d", runID, seq, retry)
	}
	return fmt.Sprintf("%d:%d", runID, seq)
}

// validRescue reports whether s is a rescue suffix as the scheduler makes
// them: "r" or "e" and a number without sign or leading zeros.
func validRescue(s string) bool {
	if len(s) < 2 || (s[0] != 'r' && s[0] != 'e') {
		return false
	}
	n, err := strconv.Atoi(s[1:])
	return err == nil && n >= 0 && strconv.Itoa(n) == s[1:]
}

// DecodeBatchPayload parses a batch task's payload.
func DecodeBatchPayload(b []byte) (BatchPayload, error) {
	var p BatchPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("decode batch payload: %w", err)
	}
	if p.RunID <= 0 || p.Seq <= 0 || p.Retry < 0 {
		return p, fmt.Errorf("decode batch payload: run %d seq %d retry %d out of range", p.RunID, p.Seq, p.Retry)
	}
	if p.Rescue != "" && !validRescue(p.Rescue) {
		return p, fmt.Errorf("decode batch payload: bad rescue %q", p.Rescue)
	}
	if p.Trace != "" && !validTraceparent(p.Trace) {
		p.Trace = ""
	}
	return p, nil
}
