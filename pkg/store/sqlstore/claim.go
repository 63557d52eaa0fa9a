package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dripflow/dripflow/pkg/store"
)

// The claim rule, stated once for this backend: a worker may claim a batch
// when the batch is not finished, its run is running, and no live claim
// holds it (it is pending, enqueued or failed, or running under a lease
// that has expired or that it never had). claimRefusal is the rule in Go,
// for the general path and its unlocking precheck; claimableSQL and
// claimRunSQL are the same rule as SQL conditions, built from the same
// states, for PostgreSQL's one-statement fast path (claimSQL).
// TestClaimRule checks that both answer alike for every batch state, run
// state and lease, on every database.

// claimRefusal returns why a batch in row b, of a run in state run, cannot
// be claimed at now — in the Store contract's order: store.ErrBatchFinished,
// store.ErrRunNotRunning, store.ErrBatchClaimed — or nil when it can.
func claimRefusal(b batchRow, run store.RunState, now time.Time) error {
	if err := finished(b); err != nil {
		return err
	}
	if run != store.RunRunning {
		return fmt.Errorf("run is %s: %w", run, store.ErrRunNotRunning)
	}
	if store.BatchState(b.State) == store.BatchRunning && leaseLive(b, now) {
		return claimedErr(b)
	}
	return nil
}

// finishedStates are the states no claim takes a batch from.
var finishedStates = []store.BatchState{store.BatchSucceeded, store.BatchCancelled}

// finished refuses a batch that needs no more processing.
func finished(b batchRow) error {
	for _, st := range finishedStates {
		if store.BatchState(b.State) == st {
			return fmt.Errorf("batch is %s: %w", st, store.ErrBatchFinished)
		}
	}
	return nil
}

// leaseLive reports whether a running batch's claim is still live at now.
func leaseLive(b batchRow, now time.Time) bool {
	return b.LeaseUntil != nil && now.Before(*b.LeaseUntil)
}

func claimedErr(b batchRow) error {
	return fmt.Errorf("worker %q holds it until %s: %w", b.Worker, b.LeaseUntil.UTC().Format(time.RFC3339Nano), store.ErrBatchClaimed)
}

// claimableSQL is claimRefusal's batch part as an SQL condition on the
// batch row named b (its state and lease_until), the instant being the
// named parameter @now.
func claimableSQL(b string) string {
	quoted := make([]string, len(finishedStates))
	for i, st := range finishedStates {
		quoted[i] = "'" + string(st) + "'"
	}
	return fmt.Sprintf("(%[1]s.state NOT IN (%[2]s) AND (%[1]s.state <> '%[3]s' OR %[1]s.lease_until IS NULL OR %[1]s.lease_until <= @now))",
		b, strings.Join(quoted, ", "), store.BatchRunning)
}

// claimRunSQL is claimRefusal's run part as an SQL condition on the run row
// named r.
func claimRunSQL(r string) string { return fmt.Sprintf("%s.state = '%s'", r, store.RunRunning) }

// A fast-path statement changes a batch and its counter slot's row
// together; should the slot's row be missing (a run created by a dripflow
// of schema version 1 while this one was being deployed), the batch must
// not change either. The statement's last column is missingSlotCheck over
// the number of slot rows it updated: with none, it fails — and so rolls
// back as a whole — with an integer overflow, which isMissingSlot
// recognises on every database; the general path then creates the slot.

// missingSlotCheck is an SQL expression that fails the statement when n (an
// SQL expression: how many counter slots the statement updated) is 0, and
// is a positive number otherwise: the absolute value of the least 64-bit
// integer does not fit in one, on PostgreSQL (SQLSTATE 22003), MySQL and
// MariaDB (error 1690) and SQLite ("integer overflow") alike. It is not a
// constant, so no database folds it when it plans the statement.
func missingSlotCheck(n string) string {
	return "ABS((" + n + ") - 9223372036854775807 - 1)"
}

// isMissingSlot reports whether err is missingSlotCheck's failure.
func isMissingSlot(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "22003" // numeric_value_out_of_range
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number == 1690 // ER_DATA_OUT_OF_RANGE
	}
	var liteErr *sqlitedriver.Error
	if errors.As(err, &liteErr) {
		return strings.Contains(liteErr.Error(), "integer overflow")
	}
	return false
}
