// Package sqlconn is the SQL connector of flows: a Source that reads a table
// by keyset over its key (full) or over a cursor such as (updated_at, id)
// (incremental, from the flow's watermark), and a Sink that inserts or
// upserts records by key. Both work on PostgreSQL, MySQL/MariaDB and SQLite
// through gorm, and register themselves as connector "sql".
package sqlconn
