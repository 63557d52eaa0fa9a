package sqlstore

import (
	"encoding/json"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// On PostgreSQL the two operations every batch goes through — its claim
// and its checkpoint — first try one statement that does all of the
// operation's work when it is allowed, and nothing otherwise: data-modifying
// CTEs lock, check, move the batch and its slot's counters together. Only
// when that statement changes nothing does the operation run its general
// transaction, which then finds out why and says so. Where the general
// transaction costs BEGIN, SET, a locking read of the batch, a read of the
// run, two updates and COMMIT — eight round trips — the claim costs one, and
// the checkpoint one instead of three (inside the data's transaction) or
// five (alone). A round trip is most of what each statement costs.

// claimSQL claims batch (@run, @seq) if the claim rule allows it
// (claimableSQL, claimRunSQL). The batch's row is locked before its run's
// (as the general path does); the run's row is share-locked, so a pause or
// cancel cannot commit in between. It returns the claimed batch and the
// state it was claimed from, or no row. The run's lock is FOR KEY SHARE, as
// in lockRunShared.
var claimSQL = `WITH b AS (
	SELECT run_id, seq, state, lease_until FROM dripflow_batches WHERE run_id = @run AND seq = @seq FOR UPDATE
), r AS (
	SELECT id FROM dripflow_runs WHERE id = (SELECT run_id FROM b) AND ` + claimRunSQL("dripflow_runs") + ` FOR KEY SHARE
), u AS (
	UPDATE dripflow_batches x SET state = 'running', attempts = x.attempts + 1, worker = @worker,
		claim_token = @token, lease_until = @lease, started_at = @now, finished_at = NULL, updated_at = @now
	FROM b, r
	WHERE x.run_id = b.run_id AND x.seq = b.seq AND ` + claimableSQL("b") + `
	RETURNING x.*, b.state AS from_state
), c AS (
	UPDATE dripflow_run_counters k SET
		batches_pending = k.batches_pending - (CASE WHEN u.from_state = 'pending' THEN 1 ELSE 0 END),
		batches_enqueued = k.batches_enqueued - (CASE WHEN u.from_state = 'enqueued' THEN 1 ELSE 0 END),
		batches_failed = k.batches_failed - (CASE WHEN u.from_state = 'failed' THEN 1 ELSE 0 END),
		batches_running = k.batches_running + (CASE WHEN u.from_state = 'running' THEN 0 ELSE 1 END),
		updated_us = @us
	FROM u WHERE k.run_id = u.run_id AND k.slot = @slot
	RETURNING k.slot
)
SELECT u.*, ` + missingSlotCheck("SELECT count(*) FROM c") + ` AS slots FROM u`

// completeSQL records the checkpoint of batch (@run, @seq) if the claim
// @token holds it, moving it and its slot's counters to succeeded. It
// returns the batch, or no row.
var completeSQL = `WITH u AS (
	UPDATE dripflow_batches SET state = 'succeeded', rows_read = @read, rows_written = @written,
		rows_skipped = @skipped, duration_ns = @duration, finished_at = @now, error = '', error_stack = '',
		claim_token = '', lease_until = NULL, updated_at = @now
	WHERE run_id = @run AND seq = @seq AND state = 'running' AND claim_token = @token AND @token <> ''
	RETURNING *
), c AS (
	UPDATE dripflow_run_counters k SET batches_running = k.batches_running - 1,
		batches_succeeded = k.batches_succeeded + 1, rows_read = k.rows_read + @read,
		rows_written = k.rows_written + @written, rows_skipped = k.rows_skipped + @skipped, updated_us = @us
	FROM u WHERE k.run_id = u.run_id AND k.slot = @slot
	RETURNING k.slot
)
SELECT u.*, ` + missingSlotCheck("SELECT count(*) FROM c") + ` AS slots FROM u`

// appendSQL applies a planning step to run @run if it is running or paused,
// not done planning and at cursor @from: it inserts the batches of @ranges
// (a JSON array of [lo, hi, size]) numbered after the run's existing ones, and
// moves the cursor and the counters. The run's row is locked FOR NO KEY
// UPDATE, as lockRunForPlanning does. It returns the number of batches the
// run had before, or no row.
const appendSQL = `WITH r AS (
	SELECT id, batches_pending + batches_enqueued + batches_running + batches_succeeded + batches_failed + batches_cancelled AS before
	FROM dripflow_runs WHERE id = @run AND state IN ('running', 'paused') AND NOT plan_done AND plan_cursor = @from
	FOR NO KEY UPDATE
), ins AS (
	INSERT INTO dripflow_batches (run_id, seq, state, lo, hi, planned_size, attempts, retries, worker, claim_token,
		rows_read, rows_written, rows_skipped, duration_ns, error, error_stack, created_at, updated_at, enqueued_at)
	SELECT r.id, r.before + b.i, CAST(@state AS varchar), b.e->>0, b.e->>1, CAST(b.e->>2 AS integer), 0, 0, '', '', 0, 0, 0, 0, '', '',
		CAST(@now AS timestamptz), CAST(@now AS timestamptz), CAST(@enqueued_at AS timestamptz)
	FROM r, jsonb_array_elements(CAST(@ranges AS jsonb)) WITH ORDINALITY AS b(e, i)
), u AS (
	UPDATE dripflow_runs x SET plan_cursor = @to, plan_done = @done,
		batches_pending = x.batches_pending + @pending, batches_enqueued = x.batches_enqueued + @enqueued,
		updated_at = @now
	FROM r WHERE x.id = r.id
	RETURNING r.before
)
SELECT before FROM u`

// (gorm's named parameters end at a space, a comma or a parenthesis, not at
// "::", hence the CASTs.)

// fastAppend tries appendSQL (autocommit, on the bookkeeping pool). ok is
// false when it appended nothing; the caller then runs the general path.
func (s *Store) fastAppend(db *gorm.DB, runID int64, step store.PlanStep) ([]store.Batch, bool, error) {
	if s.dialect != dialectPostgres {
		return nil, false, nil
	}
	ranges := make([][3]any, len(step.Batches))
	for i, kr := range step.Batches {
		ranges[i] = [3]any{kr.Lo, kr.Hi, kr.Size}
	}
	js, err := json.Marshal(ranges)
	if err != nil {
		return nil, false, err
	}
	now := s.clock()
	state, enqueuedAt := store.BatchPending, (*time.Time)(nil)
	pending, enqueued := len(ranges), 0
	if step.Enqueue {
		state, enqueuedAt = store.BatchEnqueued, &now
		pending, enqueued = 0, len(ranges)
	}
	var before []int64
	err = db.Raw(appendSQL, map[string]any{
		"run": runID, "from": step.From, "to": step.To, "done": step.Done, "ranges": string(js),
		"state": string(state), "now": now, "enqueued_at": enqueuedAt, "pending": pending, "enqueued": enqueued,
	}).Scan(&before).Error
	if err != nil || len(before) != 1 {
		return nil, false, err
	}
	out := make([]store.Batch, len(ranges))
	for i, kr := range step.Batches {
		out[i] = batchRow{
			RunID: runID, Seq: before[0] + int64(i) + 1, State: string(state),
			Lo: kr.Lo, Hi: kr.Hi, Size: kr.Size, CreatedAt: now, UpdatedAt: now, EnqueuedAt: enqueuedAt,
		}.batch()
	}
	return out, true, nil
}

// bookkeeping is the handle for autocommit bookkeeping statements: the
// pool that commits without waiting for the disk where there is one.
func (s *Store) bookkeeping() *gorm.DB {
	if s.adb != nil {
		return s.adb
	}
	return s.wdb
}

// fastClaim tries claimSQL on db (autocommit). ok is false when it claimed
// nothing; the caller then runs the general path.
func (s *Store) fastClaim(db *gorm.DB, runID, seq int64, c store.Claim) (store.Batch, bool, error) {
	if s.dialect != dialectPostgres {
		return store.Batch{}, false, nil
	}
	now := s.clock()
	var rows []batchRow
	err := db.Raw(claimSQL, map[string]any{
		"run": runID, "seq": seq, "worker": c.Worker, "token": c.Token,
		"lease": now.Add(c.Lease).Truncate(time.Microsecond), "now": now, "us": now.UnixMicro(), "slot": slotOf(seq),
	}).Scan(&rows).Error
	return fastResult(rows, err)
}

// fastComplete tries completeSQL in tx (a transaction, or the store's
// handle for an autocommit statement). ok is false when it recorded
// nothing; the caller then runs the general path.
func (s *Store) fastComplete(tx *gorm.DB, runID, seq int64, token string, r store.Result) (store.Batch, bool, error) {
	if s.dialect != dialectPostgres {
		return store.Batch{}, false, nil
	}
	now := s.clock()
	var rows []batchRow
	err := tx.Raw(completeSQL, map[string]any{
		"run": runID, "seq": seq, "token": token, "read": r.RowsRead, "written": r.RowsWritten,
		"skipped": r.RowsSkipped, "duration": int64(r.Duration), "now": now, "us": now.UnixMicro(), "slot": slotOf(seq),
	}).Scan(&rows).Error
	return fastResult(rows, err)
}

// fastResult is a fast path's batch: the one row it changed, or none.
// (The statement's extra columns, the claim's from_state and the slot
// check, are not the batch's and go unread.)
func fastResult(rows []batchRow, err error) (store.Batch, bool, error) {
	if err != nil || len(rows) == 0 {
		return store.Batch{}, false, err
	}
	return rows[0].batch(), true, nil
}

// fallBack reports whether an autocommit fast path that failed with err
// should give way to the general path: the database aborted it to break a
// deadlock (the general path retries), or it found the batch's counter slot
// missing (isMissingSlot; the general path creates the slot).
func fallBack(err error) bool {
	return retryable(err) || isMissingSlot(err)
}
