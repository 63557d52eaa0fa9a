package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dripflow/dripflow/pkg/store"
)

// eventJSON is how an event is stored in run:{id}:events, under its id.
type eventJSON struct {
	At      int64  `json:"at"` // Unix microseconds
	Kind    string `json:"kind"`
	Actor   string `json:"actor,omitempty"`
	Batch   int64  `json:"batch,omitempty"`
	Message string `json:"message,omitempty"`
	Key     string `json:"key,omitempty"`
}

func decodeEvent(runID int64, id, payload string) (store.RunEvent, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return store.RunEvent{}, fmt.Errorf("event id %q: %w", id, err)
	}
	var j eventJSON
	if err := json.Unmarshal([]byte(payload), &j); err != nil {
		return store.RunEvent{}, fmt.Errorf("event %d: %w", n, err)
	}
	return store.RunEvent{
		ID:      n,
		RunID:   runID,
		At:      time.UnixMicro(j.At).UTC(),
		Kind:    store.EventKind(j.Kind),
		Actor:   j.Actor,
		Batch:   j.Batch,
		Message: j.Message,
		Key:     j.Key,
	}, nil
}

// AppendRunEvent appends an event to its run's timeline, or returns the
// run's event with the same key, in one script.
func (s *Store) AppendRunEvent(ctx context.Context, e store.RunEvent) (store.RunEvent, bool, error) {
	e, err := e.Normalize(s.now())
	op := fmt.Sprintf("append %s event to run %d", e.Kind, e.RunID)
	if err != nil {
		return store.RunEvent{}, false, fmt.Errorf("%s: %w", op, err)
	}
	if e.RunID <= 0 {
		return store.RunEvent{}, false, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	payload, err := json.Marshal(eventJSON{At: e.At.UnixMicro(), Kind: string(e.Kind), Actor: e.Actor,
		Batch: e.Batch, Message: e.Message, Key: e.Key})
	if err != nil {
		return store.RunEvent{}, false, fmt.Errorf("%s: %w", op, err)
	}
	_, reply, err := s.eval(ctx, appendRunEventScript, op, e.RunID, string(payload), e.Key, s.maxEvents)
	if err != nil {
		return store.RunEvent{}, false, err
	}
	if len(reply) != 3 {
		return store.RunEvent{}, false, fmt.Errorf("%s: unexpected script reply %v", op, reply)
	}
	inserted, _ := reply[0].(string)
	id, _ := reply[1].(string)
	body, _ := reply[2].(string)
	ev, err := decodeEvent(e.RunID, id, body)
	if err != nil {
		return store.RunEvent{}, false, fmt.Errorf("%s: %w", op, err)
	}
	return ev, inserted == "1", nil
}

// ListRunEvents returns the run's events after f.AfterID, oldest first.
// Event ids are dense (1, 2, … per run, the oldest dropped beyond the
// cap), so the page is read by id.
func (s *Store) ListRunEvents(ctx context.Context, runID int64, f store.EventFilter) ([]store.RunEvent, error) {
	op := fmt.Sprintf("list events of run %d", runID)
	limit, err := f.Normalize()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if runID <= 0 {
		return nil, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	rk := s.runKey(runID)
	vals, err := s.client.HMGet(ctx, rk, "id", "last_event").Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if vals[0] == nil {
		return nil, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	var last int64
	if v, ok := vals[1].(string); ok {
		if last, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("%s: last_event %q: %w", op, v, err)
		}
	}
	from := max(f.AfterID+1, last-int64(s.maxEvents)+1, 1)
	to := min(last, f.AfterID+int64(limit))
	if from > to {
		return []store.RunEvent{}, nil
	}
	fields := make([]string, 0, to-from+1)
	for id := from; id <= to; id++ {
		fields = append(fields, strconv.FormatInt(id, 10))
	}
	payloads, err := s.client.HMGet(ctx, rk+":events", fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := make([]store.RunEvent, 0, len(fields))
	for i, p := range payloads {
		body, ok := p.(string)
		if !ok {
			continue // dropped beyond the cap meanwhile
		}
		ev, err := decodeEvent(runID, fields[i], body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, ev)
	}
	return out, nil
}
