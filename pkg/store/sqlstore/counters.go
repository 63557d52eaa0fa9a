package sqlstore

import (
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/dripflow/dripflow/pkg/store"
)

// counterSlots is how many rows of dripflow_run_counters each run has.
//
// A run's counters are the columns of its row plus the sums of its slot
// rows. The operations every batch goes through (enqueue, claim, complete,
// fail) move counters in the slot of the batch's seq, never in the run's
// row: were they all to update that one row, every batch transaction of a
// run would queue for its lock — held until commit, so across each commit's
// disk flush — and the run would go no faster than one commit at a time,
// whatever the number of workers. Consecutive batches fall into different
// slots, so concurrent batches lock different rows and their commits share
// flushes. Planning, cancelling and retrying, which lock the run's row
// anyway, keep moving the run row's own counters.
const counterSlots = 16

// slotOf is the counter slot of batch seq.
func slotOf(seq int64) int { return int(seq % counterSlots) }

// createSlotsSQL inserts a run's zeroed slot rows (the migration to schema
// version 2 gives every existing run its rows from the same slotValues).
var createSlotsSQL = "INSERT INTO " + countersTable + " (run_id, slot) SELECT ?, s.slot FROM " + slotValues() + " s"

// createSlots inserts the run's zeroed slot rows.
func createSlots(tx *gorm.DB, runID int64) error {
	return tx.Exec(createSlotsSQL, runID).Error
}

// moveSlotCounters moves one batch (seq) of a run from one state's counter
// to another's in the batch's slot, adds extra assignments, and stamps the
// slot with now. A missing slot row (a run created by a dripflow of schema
// version 1 during an upgrade) is created first.
func moveSlotCounters(tx *gorm.DB, runID, seq int64, from, to store.BatchState, now time.Time, extra map[string]any) error {
	set := map[string]any{"updated_us": now.UnixMicro()}
	for k, v := range extra {
		set[k] = v
	}
	if from != to {
		set[counterColumn(from)] = gorm.Expr(counterColumn(from) + " - 1")
		set[counterColumn(to)] = gorm.Expr(counterColumn(to) + " + 1")
	}
	for attempt := 0; ; attempt++ {
		res := tx.Table(countersTable).Where("run_id = ? AND slot = ?", runID, slotOf(seq)).Updates(set)
		switch {
		case res.Error != nil:
			return res.Error
		case res.RowsAffected == 1 || len(set) == 1:
			// Only the stamp (a lease taken over): nothing to count, and
			// MySQL reports a row whose stamp did not change as unaffected.
			return nil
		case attempt > 0:
			return fmt.Errorf("counter slot %d of run %d is missing", slotOf(seq), runID)
		}
		if err := createSlot(tx, runID, slotOf(seq)); err != nil {
			return err
		}
	}
}

// createSlot inserts a run's zeroed slot row unless it exists.
func createSlot(tx *gorm.DB, runID int64, slot int) error {
	q := "INSERT INTO " + countersTable + " (run_id, slot) VALUES (?, ?) ON CONFLICT DO NOTHING"
	if tx.Dialector.Name() == "mysql" {
		q = "INSERT IGNORE INTO " + countersTable + " (run_id, slot) VALUES (?, ?)"
	}
	return tx.Exec(q, runID, slot).Error
}

// runsSQL reads runs' rows with the sums of their slot rows, in one
// statement, so that the parts add up to what they were at a single
// instant. A slot's updated_us is when a batch of it last changed, in
// microseconds since the Unix epoch (0: never): an integer, so that its
// maximum keeps its type on every dialect.
const runsSQL = "SELECT r.*, c.s_pending, c.s_enqueued, c.s_running, c.s_succeeded, c.s_failed, c.s_cancelled, " +
	"c.s_read, c.s_written, c.s_skipped, c.s_updated_us FROM " + runsTable + " r LEFT JOIN (SELECT run_id, " +
	"SUM(batches_pending) AS s_pending, SUM(batches_enqueued) AS s_enqueued, SUM(batches_running) AS s_running, " +
	"SUM(batches_succeeded) AS s_succeeded, SUM(batches_failed) AS s_failed, SUM(batches_cancelled) AS s_cancelled, " +
	"SUM(rows_read) AS s_read, SUM(rows_written) AS s_written, SUM(rows_skipped) AS s_skipped, MAX(updated_us) AS s_updated_us " +
	"FROM " + countersTable + " WHERE run_id IN ? GROUP BY run_id) c ON c.run_id = r.id WHERE r.id IN ?"

// runWithSlots is a row of runsSQL. The sums are NULL for a run without
// slot rows.
type runWithSlots struct {
	Row        runRow `gorm:"embedded"`
	SPending   *int64 `gorm:"column:s_pending"`
	SEnqueued  *int64 `gorm:"column:s_enqueued"`
	SRunning   *int64 `gorm:"column:s_running"`
	SSucceeded *int64 `gorm:"column:s_succeeded"`
	SFailed    *int64 `gorm:"column:s_failed"`
	SCancelled *int64 `gorm:"column:s_cancelled"`
	SRead      *int64 `gorm:"column:s_read"`
	SWritten   *int64 `gorm:"column:s_written"`
	SSkipped   *int64 `gorm:"column:s_skipped"`
	SUpdatedUS *int64 `gorm:"column:s_updated_us"`
}

// withSlots returns the run's row with the slots' sums added, its
// UpdatedAt moved to the latest slot change when that is later.
func (w runWithSlots) withSlots() runRow {
	r := w.Row
	add := func(dst *int64, v *int64) {
		if v != nil {
			*dst += *v
		}
	}
	add(&r.BatchesPending, w.SPending)
	add(&r.BatchesEnqueued, w.SEnqueued)
	add(&r.BatchesRunning, w.SRunning)
	add(&r.BatchesSucceeded, w.SSucceeded)
	add(&r.BatchesFailed, w.SFailed)
	add(&r.BatchesCancelled, w.SCancelled)
	add(&r.RowsRead, w.SRead)
	add(&r.RowsWritten, w.SWritten)
	add(&r.RowsSkipped, w.SSkipped)
	if w.SUpdatedUS != nil && *w.SUpdatedUS > 0 {
		if t := time.UnixMicro(*w.SUpdatedUS).UTC(); t.After(r.UpdatedAt) {
			r.UpdatedAt = t
		}
	}
	return r
}

// readRuns reads the runs ids with their whole counters (runsSQL), keyed
// by id; a missing run is absent.
func readRuns(db *gorm.DB, ids []int64) (map[int64]runRow, error) {
	var rows []runWithSlots
	if err := db.Raw(runsSQL, ids, ids).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64]runRow, len(rows))
	for _, w := range rows {
		out[w.Row.ID] = w.withSlots()
	}
	return out, nil
}

// readRun is readRuns of one run, or store.ErrNotFound.
func readRun(db *gorm.DB, id int64) (runRow, error) {
	rows, err := readRuns(db, []int64{id})
	if err != nil {
		return runRow{}, err
	}
	r, ok := rows[id]
	if !ok {
		return runRow{}, store.ErrNotFound
	}
	return r, nil
}

// addSlots sets the counters of rows (read without them, under a filter or
// a lock) to their whole counters, read in one statement, and moves their
// UpdatedAt to the latest slot change when that is later; their other
// columns stay as they were read.
func addSlots(db *gorm.DB, rows []runRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	whole, err := readRuns(db, ids)
	if err != nil {
		return fmt.Errorf("read run counters: %w", err)
	}
	for i := range rows {
		w, ok := whole[rows[i].ID]
		if !ok {
			continue
		}
		rows[i].BatchesPending, rows[i].BatchesEnqueued, rows[i].BatchesRunning = w.BatchesPending, w.BatchesEnqueued, w.BatchesRunning
		rows[i].BatchesSucceeded, rows[i].BatchesFailed, rows[i].BatchesCancelled = w.BatchesSucceeded, w.BatchesFailed, w.BatchesCancelled
		rows[i].RowsRead, rows[i].RowsWritten, rows[i].RowsSkipped = w.RowsRead, w.RowsWritten, w.RowsSkipped
		if w.UpdatedAt.After(rows[i].UpdatedAt) {
			rows[i].UpdatedAt = w.UpdatedAt
		}
	}
	return nil
}

// slotValues is the derived table of every slot number, for migrations.
func slotValues() string {
	parts := make([]string, counterSlots)
	for i := range parts {
		parts[i] = fmt.Sprintf("SELECT %d AS slot", i)
	}
	return "(" + strings.Join(parts, " UNION ALL ") + ")"
}
