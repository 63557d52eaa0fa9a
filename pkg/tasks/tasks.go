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

// validRescue reports whether s is a rescue suffix as the scheduler makes
// them: "r" or "e" and a number without sign or leading zeros.
func validRescue(s string) bool {
	if len(s) < 2 || (s[0] != 'r' && s[0] != 'e') {
		return false
	}
	n, err := strconv.Atoi(s[1:])
	return err == nil && n >= 0 && strconv.Itoa(n) == s[1:]
}

// ParseTaskID parses a task id made by TaskID (a rescue suffix is ignored).
// Only the canonical form is accepted ("01:2" and "+1:2" are not "1:2"), so
// one batch never goes by two ids.
func ParseTaskID(id string) (runID, seq int64, retry int, err error) {
	parts := strings.Split(id, ":")
	if n := len(parts); n > 2 && (strings.HasPrefix(parts[n-1], "r") || strings.HasPrefix(parts[n-1], "e")) {
		if !validRescue(parts[n-1]) {
			return 0, 0, 0, fmt.Errorf("task id %q: bad rescue suffix", id)
		}
		parts = parts[:n-1]
	}
	defer func() {
		if err == nil && TaskID(runID, seq, retry) != strings.Join(parts, ":") {
			runID, seq, retry = 0, 0, 0
			err = fmt.Errorf("task id %q: not in canonical form", id)
		}
	}()
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
	if p.Rescue != "" && !validRescue(p.Rescue) {
		return p, fmt.Errorf("decode batch payload: bad rescue %q", p.Rescue)
	}
	return p, nil
}
