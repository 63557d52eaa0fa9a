package store

import (
	"errors"
	"testing"
)

func TestRunTransitions(t *testing.T) {
	legal := map[[2]RunState]bool{
		{RunScheduled, RunRunning}:    true,
		{RunScheduled, RunCancelled}:  true,
		{RunRunning, RunPaused}:       true,
		{RunRunning, RunCancelling}:   true,
		{RunRunning, RunCancelled}:    true,
		{RunRunning, RunSucceeded}:    true,
		{RunRunning, RunFailed}:       true,
		{RunPaused, RunRunning}:       true,
		{RunPaused, RunCancelling}:    true,
		{RunPaused, RunCancelled}:     true,
		{RunCancelling, RunCancelled}: true,
		{RunFailed, RunRunning}:       true,
	}
	for _, from := range RunStates {
		for _, to := range RunStates {
			if got, want := from.CanTransition(to), legal[[2]RunState{from, to}]; got != want {
				t.Errorf("%s → %s: CanTransition = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range []RunState{RunSucceeded, RunCancelled} {
		for _, to := range RunStates {
			if s.CanTransition(to) {
				t.Errorf("%s is final but may go to %s", s, to)
			}
		}
	}
	if RunState("bogus").CanTransition(RunRunning) || RunState("bogus").Valid() {
		t.Error("an unknown state is valid or may transition")
	}
}

func TestBatchTransitions(t *testing.T) {
	legal := map[[2]BatchState]bool{
		{BatchPending, BatchEnqueued}:   true,
		{BatchPending, BatchRunning}:    true,
		{BatchPending, BatchCancelled}:  true,
		{BatchEnqueued, BatchRunning}:   true,
		{BatchEnqueued, BatchCancelled}: true,
		{BatchRunning, BatchRunning}:    true,
		{BatchRunning, BatchSucceeded}:  true,
		{BatchRunning, BatchEnqueued}:   true,
		{BatchRunning, BatchFailed}:     true,
		{BatchRunning, BatchCancelled}:  true,
		{BatchFailed, BatchPending}:     true,
		{BatchFailed, BatchRunning}:     true,
	}
	for _, from := range BatchStates {
		for _, to := range BatchStates {
			if got, want := from.CanTransition(to), legal[[2]BatchState{from, to}]; got != want {
				t.Errorf("%s → %s: CanTransition = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestParseStates(t *testing.T) {
	for _, s := range RunStates {
		if got, err := ParseRunState(string(s)); err != nil || got != s {
			t.Errorf("ParseRunState(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range BatchStates {
		if got, err := ParseBatchState(string(s)); err != nil || got != s {
			t.Errorf("ParseBatchState(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "RUNNING", "done", "running "} {
		_, err := ParseRunState(bad)
		var ae *ArgumentError
		if !errors.As(err, &ae) || ae.Field != "status" || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseRunState(%q) = %v, want an ArgumentError for status", bad, err)
		}
		if _, err := ParseBatchState(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseBatchState(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestErrorsMatch(t *testing.T) {
	te := error(&TransitionError{Entity: "run", ID: "7", From: "succeeded", To: "running"})
	if !errors.Is(te, ErrIllegalTransition) || !errors.Is(te, ErrConflict) || errors.Is(te, ErrNotFound) {
		t.Errorf("TransitionError matches wrongly")
	}
	if got := te.Error(); got != "run 7: cannot go from succeeded to running" {
		t.Errorf("TransitionError message %q", got)
	}
	for _, e := range []error{ErrBatchFinished, ErrBatchClaimed, ErrStaleClaim, ErrRunNotRunning} {
		if !errors.Is(e, ErrConflict) {
			t.Errorf("%v does not match ErrConflict", e)
		}
	}
	if errors.Is(ErrBatchClaimed, ErrBatchFinished) || errors.Is(ErrStaleClaim, ErrBatchClaimed) {
		t.Error("attempt errors match each other")
	}
	if !IsFinished(ErrBatchFinished) || IsFinished(ErrBatchClaimed) {
		t.Error("IsFinished is wrong")
	}
}
