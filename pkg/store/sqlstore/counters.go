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

// counterRow is one slot's share of a run's counters. UpdatedUS is when a
// batch of the slot last changed, in microseconds since the Unix epoch (0:
// never); an integer, so that its maximum keeps its type on every dialect.
type counterRow struct {
	RunID            int64 `gorm:"column:run_id;primaryKey;autoIncrement:false"`
	Slot             int   `gorm:"column:slot;primaryKey;autoIncrement:false"`
	BatchesPending   int64 `gorm:"column:batches_pending"`
	BatchesEnqueued  int64 `gorm:"column:batches_enqueued"`
	BatchesRunning   int64 `gorm:"column:batches_running"`
	BatchesSucceeded int64 `gorm:"column:batches_succeeded"`
	BatchesFailed    int64 `gorm:"column:batches_failed"`
	BatchesCancelled int64 `gorm:"column:batches_cancelled"`
	RowsRead         int64 `gorm:"column:rows_read"`
	RowsWritten      int64 `gorm:"column:rows_written"`
	RowsSkipped      int64 `gorm:"column:rows_skipped"`
	UpdatedUS        int64 `gorm:"column:updated_us"`
}

func (counterRow) TableName() string { return countersTable }

// createSlots inserts the run's zeroed slot rows.
func createSlots(tx *gorm.DB, runID int64) error {
	rows := make([]counterRow, counterSlots)
	for i := range rows {
		rows[i] = counterRow{RunID: runID, Slot: i}
	}
	return tx.Create(&rows).Error
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

// counterColumns are the columns a run's row and its slot rows share.
const counterColumns = "batches_pending, batches_enqueued, batches_running, batches_succeeded, batches_failed, batches_cancelled, rows_read, rows_written, rows_skipped"

// readCountersSQL reads and sums the counters of runs from their rows and
// their slot rows in one statement, so that the parts add up to what they
// were at a single instant. The sums come back as whatever number type the
// driver gives (PostgreSQL's SUM is numeric), which database/sql converts.
const readCountersSQL = "SELECT run_id, " + sumColumns + ", MAX(updated_us) FROM (" +
	"SELECT id AS run_id, " + counterColumns + ", 0 AS updated_us FROM " + runsTable + " WHERE id IN ?" +
	" UNION ALL SELECT run_id, " + counterColumns + ", updated_us FROM " + countersTable + " WHERE run_id IN ?" +
	") c GROUP BY run_id"

const sumColumns = "SUM(batches_pending), SUM(batches_enqueued), SUM(batches_running), SUM(batches_succeeded), " +
	"SUM(batches_failed), SUM(batches_cancelled), SUM(rows_read), SUM(rows_written), SUM(rows_skipped)"

// getRunSQL reads one run's row with its slots' sums, in one statement.
const getRunSQL = "SELECT r.*, c.s_pending, c.s_enqueued, c.s_running, c.s_succeeded, c.s_failed, c.s_cancelled, " +
	"c.s_read, c.s_written, c.s_skipped, c.s_updated_us FROM " + runsTable + " r LEFT JOIN (SELECT run_id, " +
	"SUM(batches_pending) AS s_pending, SUM(batches_enqueued) AS s_enqueued, SUM(batches_running) AS s_running, " +
	"SUM(batches_succeeded) AS s_succeeded, SUM(batches_failed) AS s_failed, SUM(batches_cancelled) AS s_cancelled, " +
	"SUM(rows_read) AS s_read, SUM(rows_written) AS s_written, SUM(rows_skipped) AS s_skipped, MAX(updated_us) AS s_updated_us " +
	"FROM " + countersTable + " WHERE run_id = ? GROUP BY run_id) c ON c.run_id = r.id WHERE r.id = ?"

// runWithSlots is a row of getRunSQL. The sums are NULL for a run without
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

// withSlots returns the run's row with the slots' sums added.
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

// addSlots sets each run's counters to the sum of its row's and its slots',
// read together, and moves its UpdatedAt to the latest slot change when
// that is later. rows' other columns are left as they were read. It scans
// without gorm's reflection: the scheduler reads a run this way on every
// batch completion.
func addSlots(db *gorm.DB, rows []runRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]int64, len(rows))
	at := make(map[int64]int, len(rows))
	for i, r := range rows {
		ids[i], at[r.ID] = r.ID, i
	}
	res, err := db.Raw(readCountersSQL, ids, ids).Rows()
	if err != nil {
		return fmt.Errorf("read run counters: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var id, updatedUS int64
		var c counterRow
		if err := res.Scan(&id, &c.BatchesPending, &c.BatchesEnqueued, &c.BatchesRunning, &c.BatchesSucceeded,
			&c.BatchesFailed, &c.BatchesCancelled, &c.RowsRead, &c.RowsWritten, &c.RowsSkipped, &updatedUS); err != nil {
			return fmt.Errorf("read run counters: %w", err)
		}
		i, ok := at[id]
		if !ok {
			continue
		}
		r := &rows[i]
		r.BatchesPending, r.BatchesEnqueued, r.BatchesRunning = c.BatchesPending, c.BatchesEnqueued, c.BatchesRunning
		r.BatchesSucceeded, r.BatchesFailed, r.BatchesCancelled = c.BatchesSucceeded, c.BatchesFailed, c.BatchesCancelled
		r.RowsRead, r.RowsWritten, r.RowsSkipped = c.RowsRead, c.RowsWritten, c.RowsSkipped
		if t := time.UnixMicro(updatedUS).UTC(); updatedUS > 0 && t.After(r.UpdatedAt) {
			r.UpdatedAt = t
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("read run counters: %w", err)
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
