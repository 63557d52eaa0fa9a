// Package sqlstore is the SQL backend of store.Store: gorm on PostgreSQL,
// MySQL/MariaDB and SQLite (pure Go, no cgo).
//
// Open a store from a database URL, or wrap a *gorm.DB the application
// already has:
//
//	if err := sqlstore.MigrateURL(ctx, url); err != nil { … } // `dripflow migrate`
//	s, err := sqlstore.Open(ctx, url, sqlstore.Config{})
//
// Accepted URLs are postgres:// and postgresql:// (handed to pgx as they
// are), mysql://user:pass@host:port/db?opts, sqlite:///absolute/path.db and
// sqlite://relative/path.db.
//
// # Schema
//
// The schema is versioned and changed only by Migrate, which applies
// hand-written DDL per dialect and records every applied version in
// dripflow_schema_migrations. Open and New refuse a database whose schema is
// older (store.ErrSchemaOutdated) or newer (store.ErrSchemaTooNew) than
// SchemaVersion. Runs keep their options and counters as columns; batches are
// keyed by (run_id, seq). Every listing is a keyset scan over an index; no
// query uses OFFSET.
//
// # Atomicity
//
// Every change that touches more than one row is one transaction. Batch rows
// are always locked before their run's row (SELECT … FOR UPDATE on
// PostgreSQL and MySQL, which run at READ COMMITTED), the state machine is
// checked in Go, and the run's counters move by relative updates
// (batches_running = batches_running - 1) in the same transaction. A
// transaction that loses a deadlock or a serialization conflict is retried a
// few times with jitter.
//
// A flow has at most one live run (scheduled, running, paused or
// cancelling): creating a flow run, moving a failed one back to running
// (TransitionRun, RetryBatches) and DeleteFlowSpec lock the flow's row in
// dripflow_flows (after the run's row; definitions before flows) and then
// look for another live run of the definition through the index on
// dripflow_runs (definition, state, id), in the same transaction as the
// change. Spec versions (dripflow_flow_specs) are numbered from the highest
// stored for the name; creators of one name serialise on inserting its
// definition's row, updaters on locking it.
//
// A run's counters are its row's plus those of its 16 rows in
// dripflow_run_counters, read together in one statement. What every batch
// goes through — enqueue, claim, checkpoint, failure — moves the counters of
// the batch's slot (seq mod 16), never the run's row, so concurrent batches
// of one run lock different rows and their commits share the disk's
// flushes; a claim holds a shared lock on the run's row, which a pause or a
// cancel takes exclusively, so neither commits between a claim's check of the
// run's state and its commit. On PostgreSQL the per-batch bookkeeping
// (planning, enqueueing, claiming, extending a claim) commits without
// waiting for the disk: what a crash of the database could lose of it is
// redone, and checkpoints, failures and people's changes stay durable.
//
// SQLite runs in WAL mode with a busy timeout and foreign keys on; every
// transaction begins IMMEDIATE, taking the write lock up front, so two
// transactions never deadlock upgrading their locks. A store made by Open
// writes through a connection of its own while readers share a pool, and its
// writers queue in-process for that connection: completions, failures and
// every other change before claims, so work in flight finishes before new
// work starts instead of losing its lease to the claims queued ahead of it.
//
// # Same-transaction checkpoints
//
// CompleteBatchTx records a batch's checkpoint inside a transaction of the
// caller's, so an in-place backfill or a SQL sink writing to the store's
// database commits its data and its checkpoint together.
package sqlstore
