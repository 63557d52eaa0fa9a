package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/dripflow/dripflow/pkg/store"
)

// CreateRun stores a new run in state scheduled with zeroed counters and
// Total -1, and returns it with its id. A run of kind flow is refused with
// a *store.FlowBusyError while the flow has a live run (see lockIdleFlow).
func (s *Store) CreateRun(ctx context.Context, n store.NewRun) (store.Run, error) {
	if err := n.Validate(); err != nil {
		return store.Run{}, fmt.Errorf("create run of %q: %w", n.Definition, err)
	}
	params := "{}"
	if len(n.Params) > 0 {
		params = string(n.Params)
	}
	now := s.clock()
	row := runRow{
		Definition:     n.Definition,
		Kind:           string(n.Kind),
		Params:         params,
		SpecVersion:    n.SpecVersion,
		State:          string(store.RunScheduled),
		CreatedBy:      n.CreatedBy,
		BatchSize:      n.Options.BatchSize,
		MaxAttempts:    n.Options.MaxAttempts,
		MaxInFlight:    n.Options.MaxInFlight,
		SleepNS:        int64(n.Options.Sleep),
		RowsPerSecond:  n.Options.RowsPerSecond,
		BatchTimeoutNS: int64(n.Options.BatchTimeout),
		ErrorBudget:    n.Options.ErrorBudget,
		HealthChecks:   encodeHealthChecks(n.Options.HealthChecks),
		TargetBatchNS:  int64(n.Options.TargetBatchTime),
		MinBatchSize:   n.Options.MinBatchSize,
		MaxBatchSize:   n.Options.MaxBatchSize,
		StartAt:        microUTC(n.StartAt),
		Total:          -1,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row.ID = 0
		if n.Kind == store.KindFlow {
			if err := s.lockIdleFlow(tx, n.Definition, 0); err != nil {
				return err
			}
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return createSlots(tx, row.ID)
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("create run of %q: %w", n.Definition, err)
	}
	return row.run(), nil
}

// GetRun returns a run with its counters, or store.ErrNotFound.
func (s *Store) GetRun(ctx context.Context, id int64) (store.Run, error) {
	// One statement: the scheduler reads a run on every batch completion.
	row, err := readRun(s.db.WithContext(ctx), id)
	if err != nil {
		return store.Run{}, fmt.Errorf("get run %d: %w", id, err)
	}
	return row.run(), nil
}

// ListRuns returns runs newest first (by id, descending), filtered, with
// keyset pagination: each page continues below the last id of the previous
// one.
func (s *Store) ListRuns(ctx context.Context, f store.RunFilter) (store.Page[store.Run], error) {
	if err := f.Validate(); err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("list runs: %w", err)
	}
	limit, _ := store.NormalizeLimit(f.Limit)
	before, paged, _ := store.DecodeCursor(f.Cursor)
	q := page{table: runsTable, order: "id DESC", limit: limit + 1}
	if paged {
		q.where, q.args = append(q.where, "id < ?"), append(q.args, before)
	}
	if f.Definition != "" {
		q.where, q.args = append(q.where, "definition = ?"), append(q.args, f.Definition)
	}
	if f.CreatedBy != "" {
		q.where, q.args = append(q.where, "created_by = ?"), append(q.args, f.CreatedBy)
	}
	if f.Kind != "" {
		q.where, q.args = append(q.where, "kind = ?"), append(q.args, string(f.Kind))
	}
	for _, st := range f.States {
		q.states = append(q.states, string(st))
	}
	var rows []runRow
	if err := q.find(s.db.WithContext(ctx), &rows); err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("list runs: %w", err)
	}
	if err := addSlots(s.db.WithContext(ctx), rows[:min(len(rows), limit)]); err != nil {
		return store.Page[store.Run]{}, fmt.Errorf("list runs: %w", err)
	}
	out := store.Page[store.Run]{Items: make([]store.Run, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			out.NextCursor = store.EncodeCursor(rows[limit-1].ID)
			break
		}
		out.Items = append(out.Items, r.run())
	}
	return out, nil
}

// TransitionRun moves a run to state to if the run state machine allows it,
// else returns a *store.TransitionError and changes nothing.
func (s *Store) TransitionRun(ctx context.Context, id int64, to store.RunState, opts *store.TransitionOptions) (store.Run, error) {
	if !to.Valid() {
		return store.Run{}, fmt.Errorf("transition run %d: %w", id, &store.ArgumentError{Field: "state", Message: fmt.Sprintf("unknown run state %q", to)})
	}
	var out store.Run
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		row, ok, err := s.lockRun(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		from := store.RunState(row.State)
		if !from.CanTransition(to) || (opts != nil && opts.From != "" && from != opts.From) {
			return &store.TransitionError{Entity: "run", ID: runName(id), From: string(from), To: string(to)}
		}
		if from.Terminal() && !to.Terminal() && store.Kind(row.Kind) == store.KindFlow {
			if err := s.lockIdleFlow(tx, row.Definition, id); err != nil {
				return err
			}
		}
		now := s.clock()
		set := map[string]any{"state": string(to), "updated_at": now}
		row.State, row.UpdatedAt = string(to), now
		if to == store.RunRunning {
			if row.StartedAt == nil {
				set["started_at"], row.StartedAt = now, &now
			}
			set["error"], row.Error = "", ""
		}
		if to.Terminal() {
			set["finished_at"], row.FinishedAt = now, &now
		} else {
			set["finished_at"], row.FinishedAt = nil, nil
		}
		if to == store.RunFailed && opts != nil {
			set["error"], row.Error = opts.Error, opts.Error
		}
		if err := tx.Table(runsTable).Where("id = ?", id).Updates(set).Error; err != nil {
			return err
		}
		rows := []runRow{row}
		if err := addSlots(tx, rows); err != nil {
			return err
		}
		out = rows[0].run()
		return nil
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("transition run %d to %s: %w", id, to, err)
	}
	return out, nil
}

// SetRunTotal records the number of records in the run's scope (-1:
// unknown); estimated says it is an estimate.
func (s *Store) SetRunTotal(ctx context.Context, id int64, total int64, estimated bool) error {
	if total < -1 {
		return fmt.Errorf("set total of run %d: %w", id, &store.ArgumentError{Field: "total", Message: fmt.Sprintf("must be -1 (unknown) or more, got %d", total)})
	}
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		_, ok, err := s.lockRunForPlanning(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		return tx.Table(runsTable).Where("id = ?", id).Updates(map[string]any{
			"total": total, "total_estimated": estimated, "updated_at": s.clock(),
		}).Error
	})
	if err != nil {
		return fmt.Errorf("set total of run %d: %w", id, err)
	}
	return nil
}

// SetRunHold records why the scheduler holds the run's planning back, or
// clears it (nil).
func (s *Store) SetRunHold(ctx context.Context, id int64, h *store.RunHold) error {
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		_, ok, err := s.lockRunForPlanning(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		return tx.Table(runsTable).Where("id = ?", id).Updates(map[string]any{
			"held": encodeHold(h), "updated_at": s.clock(),
		}).Error
	})
	if err != nil {
		return fmt.Errorf("set hold of run %d: %w", id, err)
	}
	return nil
}

// CancelRun cancels the run's pending and enqueued batches and moves the run
// to cancelling while batches are still running, otherwise to cancelled, in
// one transaction.
func (s *Store) CancelRun(ctx context.Context, id int64) (store.Run, error) {
	var out store.Run
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		// Batch rows first, then the run's: the order every transaction of
		// the store takes its locks in.
		if err := s.lockBatchesIn(tx, id, store.BatchPending, store.BatchEnqueued); err != nil {
			return err
		}
		row, ok, err := s.lockRun(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		switch from := store.RunState(row.State); from {
		case store.RunScheduled, store.RunRunning, store.RunPaused:
		default:
			return &store.TransitionError{Entity: "run", ID: runName(id), From: string(from), To: string(store.RunCancelled)}
		}
		now := s.clock()
		// Counted by what the updates changed, not by what was locked
		// above: a batch appended since is cancelled and counted too.
		cancelled := map[store.BatchState]int64{}
		for _, st := range []store.BatchState{store.BatchPending, store.BatchEnqueued} {
			res := tx.Table(batchesTable).Where("run_id = ? AND state = ?", id, string(st)).Updates(map[string]any{
				"state": string(store.BatchCancelled), "finished_at": now, "updated_at": now,
			})
			if res.Error != nil {
				return res.Error
			}
			cancelled[st] = res.RowsAffected
		}
		// The slots' share too: batches claimed before the run's lock was
		// taken count as running.
		rows := []runRow{row}
		if err := addSlots(tx, rows); err != nil {
			return err
		}
		to := store.RunCancelled
		if rows[0].BatchesRunning > 0 {
			to = store.RunCancelling
		}
		set := map[string]any{
			"state":             string(to),
			"updated_at":        now,
			"batches_pending":   gorm.Expr("batches_pending - ?", cancelled[store.BatchPending]),
			"batches_enqueued":  gorm.Expr("batches_enqueued - ?", cancelled[store.BatchEnqueued]),
			"batches_cancelled": gorm.Expr("batches_cancelled + ?", cancelled[store.BatchPending]+cancelled[store.BatchEnqueued]),
		}
		if to == store.RunCancelled {
			set["finished_at"] = now
		}
		if err := tx.Table(runsTable).Where("id = ?", id).Updates(set).Error; err != nil {
			return err
		}
		row, err = readRun(tx, id)
		out = row.run()
		return err
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("cancel run %d: %w", id, err)
	}
	return out, nil
}

// AppendBatches applies one planning step if the run is running or paused,
// not done planning, and its plan cursor still equals step.From; otherwise it
// returns an error matching store.ErrConflict and creates nothing.
func (s *Store) AppendBatches(ctx context.Context, runID int64, step store.PlanStep) ([]store.Batch, error) {
	if err := step.Validate(); err != nil {
		return nil, fmt.Errorf("append %d batches to run %d: %w", len(step.Batches), runID, err)
	}
	if bs, ok, err := s.fastAppend(s.bookkeeping().WithContext(ctx), runID, step); ok || (err != nil && !fallBack(err)) {
		if err != nil {
			return nil, fmt.Errorf("append %d batches to run %d: %w", len(step.Batches), runID, err)
		}
		return bs, nil
	}
	var out []store.Batch
	err := s.inBookkeepingTx(ctx, func(tx *gorm.DB) error {
		// The new batch rows do not exist yet, so the run's row is the only
		// lock: it serialises planners, and the batches are numbered from
		// its counters, which count every batch the run has. It does not
		// hold up claims (see lockRunForPlanning).
		row, ok, err := s.lockRunForPlanning(tx, runID)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		switch st := store.RunState(row.State); {
		case st != store.RunRunning && st != store.RunPaused:
			return fmt.Errorf("run is %s, not running or paused: %w", st, store.ErrConflict)
		case row.PlanDone:
			return fmt.Errorf("planning is done: %w", store.ErrConflict)
		case row.PlanCursor != step.From:
			return fmt.Errorf("plan cursor is %q, not %q (another planner moved it): %w", row.PlanCursor, step.From, store.ErrConflict)
		}
		now := s.clock()
		next := row.BatchesPending + row.BatchesEnqueued + row.BatchesRunning +
			row.BatchesSucceeded + row.BatchesFailed + row.BatchesCancelled + 1
		state, enqueuedAt := store.BatchPending, (*time.Time)(nil)
		if step.Enqueue {
			state, enqueuedAt = store.BatchEnqueued, &now
		}
		rows := make([]batchRow, len(step.Batches))
		for i, kr := range step.Batches {
			rows[i] = batchRow{
				RunID: runID, Seq: next + int64(i), State: string(state),
				Lo: kr.Lo, Hi: kr.Hi, Size: kr.Size, CreatedAt: now, UpdatedAt: now, EnqueuedAt: enqueuedAt,
			}
		}
		if len(rows) > 0 {
			if err := tx.CreateInBatches(&rows, s.insertChunk()).Error; err != nil {
				return err
			}
		}
		err = tx.Table(runsTable).Where("id = ?", runID).Updates(map[string]any{
			"plan_cursor":        step.To,
			"plan_done":          step.Done,
			counterColumn(state): gorm.Expr(counterColumn(state)+" + ?", len(rows)),
			"updated_at":         now,
		}).Error
		if err != nil {
			return err
		}
		out = make([]store.Batch, len(rows))
		for i, r := range rows {
			out[i] = r.batch()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append %d batches to run %d: %w", len(step.Batches), runID, err)
	}
	return out, nil
}

// RetryBatches moves the run's failed batches (all, or just seq) back to
// pending and a failed run back to running, in one transaction, and returns
// how many batches it moved.
func (s *Store) RetryBatches(ctx context.Context, runID int64, seq *int64) (int64, error) {
	what := "failed batches"
	if seq != nil {
		what = "batch " + store.BatchID(runID, *seq)
	}
	var moved int64
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		var one batchRow
		if seq != nil {
			var ok bool
			var err error
			if one, ok, err = s.lockBatch(tx, runID, *seq); err != nil {
				return err
			}
			if !ok {
				return store.ErrNotFound
			}
		} else {
			if err := s.lockBatchesIn(tx, runID, store.BatchFailed); err != nil {
				return err
			}
		}
		row, ok, err := s.lockRun(tx, runID)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		from := store.RunState(row.State)
		switch from {
		case store.RunSucceeded, store.RunCancelled, store.RunCancelling:
			return &store.TransitionError{Entity: "run", ID: runName(runID), From: string(from), To: string(store.RunRunning)}
		}
		if seq != nil && store.BatchState(one.State) != store.BatchFailed {
			return &store.TransitionError{Entity: "batch", ID: store.BatchID(runID, *seq), From: one.State, To: string(store.BatchPending)}
		}
		if from == store.RunFailed && store.Kind(row.Kind) == store.KindFlow {
			if err := s.lockIdleFlow(tx, row.Definition, runID); err != nil {
				return err
			}
		}
		now := s.clock()
		q := tx.Table(batchesTable).Where("run_id = ? AND state = ?", runID, string(store.BatchFailed))
		if seq != nil {
			q = q.Where("seq = ?", *seq)
		}
		res := q.Updates(map[string]any{
			"state":       string(store.BatchPending),
			"retries":     gorm.Expr("retries + 1"),
			"finished_at": nil,
			"updated_at":  now,
		})
		if res.Error != nil {
			return res.Error
		}
		moved = res.RowsAffected
		if moved == 0 && from != store.RunFailed {
			return nil
		}
		set := map[string]any{
			"batches_failed":  gorm.Expr("batches_failed - ?", moved),
			"batches_pending": gorm.Expr("batches_pending + ?", moved),
			"updated_at":      now,
		}
		if from == store.RunFailed {
			set["state"] = string(store.RunRunning)
			set["finished_at"] = nil
			set["error"] = ""
		}
		return tx.Table(runsTable).Where("id = ?", runID).Updates(set).Error
	})
	if err != nil {
		return 0, fmt.Errorf("retry %s of run %d: %w", what, runID, err)
	}
	return moved, nil
}

// insertChunk is how many batch rows one INSERT carries. 500 rows of 21
// columns stay below every dialect's limit on bound parameters; the SQLite
// driver matches each parameter to its argument by a linear search, so
// there a statement binding thousands of them costs more than parsing a few
// more statements.
func (s *Store) insertChunk() int {
	if s.dialect == dialectSQLite {
		return 20
	}
	return 500
}

// lockRun reads a run's row and, outside SQLite, locks it until the
// transaction ends.
func (s *Store) lockRun(tx *gorm.DB, id int64) (runRow, bool, error) {
	var row runRow
	ok, err := findOne(s.forUpdate(tx.Table(runsTable).Where("id = ?", id)), &row)
	return row, ok, err
}

// lockBatchesIn locks the run's batches that are in one of states (outside
// SQLite, whose transactions lock the whole database). It locks from the
// highest seq down: workers claim batches roughly in seq order, so the scan
// takes the untouched tail at once and then waits only for the few batches
// being claimed, where locking upwards would queue behind the claimers' front
// for as long as they keep moving.
func (s *Store) lockBatchesIn(tx *gorm.DB, runID int64, states ...store.BatchState) error {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	var seqs []int64
	switch s.dialect {
	case dialectSQLite:
		return nil
	case dialectMySQL:
		// Through the primary key: InnoDB locking through the (run_id, state,
		// seq) index would lock index records before rows, the opposite of
		// a claim, which locks the row and then moves its index record.
		return tx.Raw("SELECT seq FROM "+batchesTable+" FORCE INDEX (PRIMARY) WHERE run_id = ? AND state IN ? ORDER BY seq DESC FOR UPDATE",
			runID, names).Scan(&seqs).Error
	default:
		return s.forUpdate(tx.Table(batchesTable).Select("seq").Where("run_id = ? AND state IN ?", runID, names).Order("seq DESC")).
			Find(&seqs).Error
	}
}

// lockRunForPlanning is lockRun for a planning step. On PostgreSQL it takes
// the row's FOR NO KEY UPDATE lock, which serialises planners and waits for
// (and holds up) changes of the run's state — each of them locks the row
// FOR UPDATE — but lets claims through: their FOR KEY SHARE lock conflicts
// with FOR UPDATE only.
func (s *Store) lockRunForPlanning(tx *gorm.DB, id int64) (runRow, bool, error) {
	if s.dialect != dialectPostgres {
		return s.lockRun(tx, id)
	}
	var row runRow
	ok, err := findOne(tx.Table(runsTable).Where("id = ?", id).Clauses(clause.Locking{Strength: "NO KEY UPDATE"}), &row)
	return row, ok, err
}

// lockRunShared reads a run's state and, outside SQLite, holds a shared
// lock on its row until the transaction ends: claims hold it together, while
// a change of the run's state (which locks the row FOR UPDATE) waits for
// them, and they for it. On PostgreSQL it is FOR KEY SHARE, which planning
// steps (FOR NO KEY UPDATE) and the updates of the run's counters do not
// wait for either.
func (s *Store) lockRunShared(tx *gorm.DB, id int64) (string, bool, error) {
	var row struct{ State string }
	q := "SELECT state FROM " + runsTable + " WHERE id = ?"
	switch s.dialect {
	case dialectPostgres:
		q += " FOR KEY SHARE"
	case dialectMySQL:
		q += " LOCK IN SHARE MODE"
	}
	res := tx.Raw(q, id).Scan(&row)
	return row.State, res.RowsAffected > 0, res.Error
}

// counterColumn is the run column counting batches in state st.
func counterColumn(st store.BatchState) string { return "batches_" + string(st) }

// runName formats a run's id in messages.
func runName(id int64) string { return strconv.FormatInt(id, 10) }
