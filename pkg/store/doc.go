// Package store holds dripflow's domain model — runs, batches, definitions and
// flow state — and the Store interface through which every process reads and
// changes it.
//
// A Run is one execution of a definition; a Batch is a half-open key range
// (Lo, Hi] of a run and is also its checkpoint. Both move through small state
// machines (see RunState and BatchState); an illegal move is a
// *TransitionError, which matches ErrIllegalTransition and ErrConflict.
//
// Two backends implement Store and behave identically: package sqlstore (gorm
// on PostgreSQL, MySQL/MariaDB and SQLite) and package redisstore (go-redis).
// Both pass the conformance suite in package storetest.
//
// The operations the engine races on are atomic in every backend:
//
//   - ClaimBatch claims a batch for one attempt unless it is already
//     succeeded, cancelled or claimed by a live attempt (one whose lease has
//     not expired);
//   - CompleteBatch marks a claimed batch succeeded and adds its row counts to
//     the run, only for the attempt holding the claim, so two workers racing on
//     one batch can never both count it.
//
// Runs keep counters (batches by state, rows read, written and skipped) that
// every batch transition updates in the same atomic step, so a run's totals are
// read in O(1).
package store
