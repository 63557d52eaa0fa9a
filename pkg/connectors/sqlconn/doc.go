// Package sqlconn is the SQL connector of flows, registered as kind "sql".
//
// Its Source is keyed: it reads a table, or a gorm model's named scope
// (RegisterModel), by keyset over its key (a full pass) or over a cursor such
// as (updated_at, id) (incremental, from the flow's watermark). Its Sink
// inserts, upserts or updates records by key, into a table or a gorm model's
// table, in chunks. Both work on PostgreSQL, MySQL/MariaDB and SQLite, on any
// named connection (DRIPFLOW_CONNECTIONS), so a flow can read a MariaDB
// replica and write PostgreSQL.
//
// Delivery: a sink on the application database joins the batch's checkpoint
// transaction when the store is the SQL store on that database (exactly
// once). Elsewhere, upsert and update are idempotent and insert with a Key is
// idempotent (ON CONFLICT DO NOTHING); insert without a Key is at least once.
package sqlconn
