// Package examples holds the demo schema and the canonical example
// definitions that dev mode and the tests use:
//
//   - backfill add_default_role_to_users (ProcessBatch): set role where it is
//     null;
//   - backfill fix_user_emails (ProcessElement): normalise email, mark it
//     verified;
//   - backfill import_user_emails (CSV rows): set the emails given in an
//     uploaded CSV (id,email), one batch per slice of its rows;
//   - flow user_sync: active users → user_backups, upsert by user_id,
//     incremental on (updated_at, id), every 30 seconds.
//
// Importing the package registers them in engine.DefaultRegistry.
package examples
