// Package timeline writes the events of a run's timeline
// (store.AppendRunEvent) from where they happen — the web API and UI, the
// scheduler, the workers — and words them the same way everywhere. Writing
// an event is best effort: a store that fails to take it is logged, and the
// action the event describes goes on as if nothing happened.
package timeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dripflow/dripflow/pkg/keyset"
	"github.com/dripflow/dripflow/pkg/store"
)

// Actors of events that are not people.
const (
	Scheduler = "scheduler"
	Asynqmon  = "asynqmon"
)

// User is the actor of an event caused by an authenticated identity.
func User(identity string) string {
	if identity == "" {
		return "user:anonymous"
	}
	return "user:" + identity
}

// Worker is the actor of an event a worker wrote.
func Worker(id string) string { return "worker:" + id }

// Creator is the actor that created a run: the scheduler for the runs it
// starts (created by schedulerIdentity), else the identity.
func Creator(createdBy, schedulerIdentity string) string {
	if createdBy == schedulerIdentity {
		return Scheduler
	}
	return User(createdBy)
}

// writeTimeout bounds one append, so a slow store cannot hold up the
// action it is about.
const writeTimeout = 5 * time.Second

// Appender is the part of store.Store that Record needs.
type Appender interface {
	AppendRunEvent(ctx context.Context, e store.RunEvent) (store.RunEvent, bool, error)
}

// Record appends e to its run's timeline on st (nil: nowhere). It never
// fails: an error is logged on log (nil: not at all), and ctx ending does
// not stop the write (the action it records has happened).
func Record(ctx context.Context, st Appender, log *zap.Logger, e store.RunEvent) (store.RunEvent, bool) {
	if st == nil || e.RunID <= 0 {
		return store.RunEvent{}, false
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	ev, inserted, err := st.AppendRunEvent(wctx, e)
	if err != nil {
		if log != nil && !errors.Is(err, store.ErrNotFound) {
			log.Warn("record run timeline event", zap.Int64("run", e.RunID), zap.String("kind", string(e.Kind)), zap.Error(err))
		}
		return store.RunEvent{}, false
	}
	return ev, inserted
}

// Count writes n with thousands separators: 1,234,567.
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%s %s", Count(n), one)
	}
	return fmt.Sprintf("%s %s", Count(n), many)
}

// Created is the message of a run's created event: its params and the
// options that differ from none.
func Created(r store.Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Kind, r.Definition)
	if r.SpecVersion > 0 {
		fmt.Fprintf(&b, " (version %d)", r.SpecVersion)
	}
	if p := strings.TrimSpace(string(r.Params)); p != "" && p != "{}" && p != "null" {
		fmt.Fprintf(&b, ", params %s", p)
	}
	o := r.Options
	fmt.Fprintf(&b, "; batch size %s, max in flight %d, max attempts %d", Count(int64(o.BatchSize)), o.MaxInFlight, o.MaxAttempts)
	if o.RowsPerSecond > 0 {
		fmt.Fprintf(&b, ", %s rows/s", Count(int64(o.RowsPerSecond)))
	}
	if o.Sleep > 0 {
		fmt.Fprintf(&b, ", sleep %s", o.Sleep)
	}
	if o.BatchTimeout > 0 {
		fmt.Fprintf(&b, ", batch timeout %s", o.BatchTimeout)
	}
	if o.ErrorBudget > 0 {
		fmt.Fprintf(&b, ", error budget %d", o.ErrorBudget)
	}
	if o.Adaptive() {
		lo, hi := o.BatchSizeBounds()
		fmt.Fprintf(&b, ", adaptive: target %s a batch, size %s to %s", o.TargetBatchTime, Count(int64(lo)), Count(int64(hi)))
	}
	if len(o.HealthChecks) > 0 {
		labels := make([]string, len(o.HealthChecks))
		for i, c := range o.HealthChecks {
			labels[i] = c.Label()
		}
		fmt.Fprintf(&b, ", health checks: %s", strings.Join(labels, ", "))
	}
	if r.StartAt != nil {
		fmt.Fprintf(&b, "; starts at %s", r.StartAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Finished is the message of a run's finished event: how it ended, with
// its counts.
func Finished(r store.Run) string {
	var b strings.Builder
	b.WriteString(string(r.State))
	fmt.Fprintf(&b, ": %s succeeded", plural(r.BatchesSucceeded, "batch", "batches"))
	if r.BatchesFailed > 0 {
		fmt.Fprintf(&b, ", %s failed", Count(r.BatchesFailed))
	}
	if r.BatchesCancelled > 0 {
		fmt.Fprintf(&b, ", %s cancelled", Count(r.BatchesCancelled))
	}
	fmt.Fprintf(&b, "; rows read %s, written %s, skipped %s", Count(r.RowsRead), Count(r.RowsWritten), Count(r.RowsSkipped))
	if r.StartedAt != nil && r.FinishedAt != nil {
		fmt.Fprintf(&b, "; took %s", r.FinishedAt.Sub(*r.StartedAt).Round(100*time.Millisecond))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, " — %s", r.Error)
	}
	return b.String()
}

// Range is a batch's key range as people read it: (start, 100] for the
// first batch of integer keys, keys of several columns in parentheses.
func Range(b store.Batch) string { return keyset.HumanRange(b.Lo, b.Hi) }

// BatchFailed is the event of a failed attempt of batch b (as FailBatch
// left it): attempt of maxAttempts of the batch's current task, final
// when it will not be tried again.
func BatchFailed(b store.Batch, attempt, maxAttempts int, final bool, worker string, cause error) store.RunEvent {
	what := "failed, will be retried"
	if final {
		what = "failed for good"
	}
	round := ""
	if b.Retries > 0 {
		round = fmt.Sprintf(" (after %s)", plural(int64(b.Retries), "retry", "retries"))
	}
	e := store.RunEvent{
		RunID: b.RunID, Kind: store.EventBatchFailed, Actor: Worker(worker), Batch: b.Seq,
		Message: fmt.Sprintf("batch %d %s attempt %d of %d%s %s: %v", b.Seq, Range(b), attempt, maxAttempts, round, what, cause),
	}
	if final {
		e.Key = FinalFailureKey(b.Seq, b.Retries)
	}
	return e
}

// FinalFailureKey keys the event of a batch's failure for good in one
// round of retries: written once, and how the run page counts the batches
// that failed for good before.
func FinalFailureKey(seq int64, retries int) string {
	return fmt.Sprintf("failed:%d:%d", seq, retries)
}
