package tasks

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TypeBatch is the asynq task type of a batch.
const TypeBatch = "dripflow:batch"

// Defaults of Config.
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

// ParseTaskID parses a task id made by TaskID (a rescue suffix is ignored).
func ParseTaskID(id string) (runID, seq int64, retry int, err error) {
	parts := strings.Split(id, ":")
	if n := len(parts); n > 2 && (strings.HasPrefix(parts[n-1], "r") || strings.HasPrefix(parts[n-1], "e")) {
		if r, err := strconv.Atoi(parts[n-1][1:]); err != nil || r < 0 {
			return 0, 0, 0, fmt.Errorf("task id %q: bad rescue suffix", id)
		}
		parts = parts[:n-1]
	}
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, fmt.Errorf("task id %q: want <run>:<seq>[:<retry>]", id)
	}
	if runID, err = strconv.ParseInt(parts[0], 10, 64); err != nil || runID <= 0 {
		return 0, 0, 0, fmt.Errorf("task id %q: bad run id", id)
	}
	if seq, err = strconv.ParseInt(parts[1], 10, 64); err != nil || seq <= 0 {
		return 0, 0, 0, fmt.Errorf("task id %q: bad batch seq", id)
	}
	if len(parts) == 3 {
		if retry, err = strconv.Atoi(parts[2]); err != nil || retry <= 0 {
			return 0, 0, 0, fmt.Errorf("task id %q: bad retry", id)
		}
	}
	return runID, seq, retry, nil
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
	return p, nil
}
