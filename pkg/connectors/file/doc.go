// Package file is dripflow's "file" connector: a source that reads JSONL
// or CSV files — one file, or a directory or glob of them read in name
// order as they appear and grow — and a sink that writes each batch into
// JSONL or CSV files in a directory, atomically (temporary name, fsync,
// rename) and under a name derived from the batch, so a retried batch
// overwrites its own files.
//
// Importing the package registers the kind "file" with flows.
package file
