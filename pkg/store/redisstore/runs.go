package redisstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dripflow/dripflow/pkg/store"
)

// CreateRun stores a new scheduled run with zeroed counters and Total -1 and
// returns it with its id. Nil Params are stored as {}. A run of kind flow
// is refused with a *store.FlowBusyError while the flow has a live run
// (the script checks flowlive:{definition}).
func (s *Store) CreateRun(ctx context.Context, n store.NewRun) (store.Run, error) {
	const op = "create run"
	if err := n.Validate(); err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", op, err)
	}
	args := append([]any{n.Definition, n.CreatedBy, string(n.Kind)}, runFields(n)...)
	_, reply, err := s.eval(ctx, createRunScript, op, args...)
	if err != nil {
		return store.Run{}, err
	}
	return decodeRun(pairs(reply))
}

// GetRun returns a run with its counters, or an error matching
// store.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int64) (store.Run, error) {
	op := fmt.Sprintf("get run %d", id)
	if id <= 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	h, err := s.client.HGetAll(ctx, s.runKey(id)).Result()
	if err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", op, err)
	}
	if len(h) == 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	return decodeRun(h)
}

// ListRuns returns runs newest first, filtered, with keyset pagination. It
// scans the smallest of the matching indexes (the states', the definition's,
// the creator's or the kind's) and checks the other filters on each run.
func (s *Store) ListRuns(ctx context.Context, f store.RunFilter) (store.Page[store.Run], error) {
	const op = "list runs"
	if err := f.Validate(); err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("%s: %w", op, err)
	}
	limit, _ := store.NormalizeLimit(f.Limit)
	after, hasAfter, _ := store.DecodeCursor(f.Cursor)

	var options [][]string
	states := map[store.RunState]bool{}
	if len(f.States) > 0 {
		var keys []string
		for _, st := range f.States {
			if !states[st] {
				states[st] = true
				keys = append(keys, s.prefix+"runs:state:"+string(st))
			}
		}
		options = append(options, keys)
	}
	if f.Definition != "" {
		options = append(options, []string{s.prefix + "runs:def:" + f.Definition})
	}
	if f.CreatedBy != "" {
		options = append(options, []string{s.prefix + "runs:by:" + f.CreatedBy})
	}
	if f.Kind != "" {
		if err := s.indexKinds(ctx); err != nil {
			return store.Page[store.Run]{}, fmt.Errorf("%s: %w", op, err)
		}
		options = append(options, []string{s.kindKey(string(f.Kind))})
	}
	if len(options) == 0 {
		options = append(options, []string{s.prefix + "runs"})
	}
	keys, size, err := smallest(ctx, s.client, options)
	if err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("%s: %w", op, err)
	}
	if size == 0 {
		return store.Page[store.Run]{Items: []store.Run{}}, nil
	}
	l := listing[store.Run]{
		keys: keys, desc: true, after: after, hasAfter: hasAfter, limit: limit,
		load: s.loadRuns,
		match: func(r store.Run) bool {
			return (len(states) == 0 || states[r.State]) &&
				(f.Definition == "" || r.Definition == f.Definition) &&
				(f.CreatedBy == "" || r.CreatedBy == f.CreatedBy) &&
				(f.Kind == "" || r.Kind == f.Kind)
		},
		key: func(r store.Run) int64 { return r.ID },
	}
	p, err := l.page(ctx, s.client)
	if err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("%s: %w", op, err)
	}
	return p, nil
}

func (s *Store) loadRuns(ctx context.Context, ids []int64) ([]store.Run, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.runKey(id)
	}
	hs, err := hashes(ctx, s.client, keys)
	if err != nil {
		return nil, err
	}
	runs := make([]store.Run, 0, len(hs))
	for _, h := range hs {
		if h == nil {
			continue
		}
		r, err := decodeRun(h)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// TransitionRun moves a run to state to if store.RunState.CanTransition
// allows it, setting StartedAt, FinishedAt and Error as the store.Store
// contract says; otherwise it returns a *store.TransitionError.
func (s *Store) TransitionRun(ctx context.Context, id int64, to store.RunState, opts *store.TransitionOptions) (store.Run, error) {
	op := fmt.Sprintf("transition run %d to %s", id, to)
	if !to.Valid() {
		return store.Run{}, fmt.Errorf("%s: %w", op, &store.ArgumentError{Field: "state", Message: fmt.Sprintf("unknown run state %q", to)})
	}
	if id <= 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	var msg string
	if opts != nil {
		msg = opts.Error
	}
	args := []any{id, string(to), msg}
	// The state machine lives in package store; the script gets the states
	// the target may be reached from.
	for _, from := range store.RunStates {
		if from.CanTransition(to) && (opts == nil || opts.From == "" || opts.From == from) {
			args = append(args, string(from))
		}
	}
	_, reply, err := s.eval(ctx, transitionRunScript, op, args...)
	if err != nil {
		return store.Run{}, err
	}
	return decodeRun(pairs(reply))
}

// SetRunTotal records the number of records in the run's scope (-1:
// unknown) and whether it is an estimate.
func (s *Store) SetRunTotal(ctx context.Context, id int64, total int64, estimated bool) error {
	op := fmt.Sprintf("set total of run %d", id)
	if total < -1 {
		return fmt.Errorf("%s: %w", op, &store.ArgumentError{Field: "total", Message: fmt.Sprintf("must be -1 (unknown) or more, got %d", total)})
	}
	if id <= 0 {
		return fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	_, _, err := s.eval(ctx, setRunTotalScript, op, id, total, boolArg(estimated))
	return err
}

// SetRunHold records why the scheduler holds the run's planning back (the
// run hash's held field, JSON), or clears it (nil).
func (s *Store) SetRunHold(ctx context.Context, id int64, h *store.RunHold) error {
	op := fmt.Sprintf("set hold of run %d", id)
	if id <= 0 {
		return fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	v := ""
	if h != nil {
		b, err := json.Marshal(h.Normalize())
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		v = string(b)
	}
	_, _, err := s.eval(ctx, setRunHoldScript, op, id, v)
	return err
}

// CancelRun cancels the run's pending and enqueued batches and moves the run
// to cancelling while batches are still running, else to cancelled.
//
// A run with at most 1000 pending and enqueued batches is cancelled in one
// atomic step. A larger one is cancelled in steps of 1000: the first step
// already moves the run to cancelling, so no batch of it can be claimed or
// planned from then on, and the last step settles the run as cancelling or
// cancelled by the batches running at that moment. Counters are exact after
// every step. If the caller stops between steps (its context ends, the
// process dies), the run stays cancelling with batches left pending; calling
// CancelRun again finishes the job instead of returning a
// *store.TransitionError.
func (s *Store) CancelRun(ctx context.Context, id int64) (store.Run, error) {
	op := fmt.Sprintf("cancel run %d", id)
	if id <= 0 {
		return store.Run{}, fmt.Errorf("%s: run %w", op, store.ErrNotFound)
	}
	for {
		code, reply, err := s.eval(ctx, cancelRunScript, op, id, s.step)
		if err != nil {
			return store.Run{}, err
		}
		if code == "OK" {
			return decodeRun(pairs(reply))
		}
	}
}
