// Package engine is what backfills and flows compile into, and what the
// scheduler and the worker run: a registry of Jobs, each able to plan its key
// ranges and process one range.
//
// A backfill is a job whose sink writes in place; a flow is a job with a
// source, transforms and a sink. The worker does not care which: it opens the
// job's Pipeline for a run's params and calls Process for a batch's range,
// inside the store's transaction when the job writes to the store's database
// (so the data write and the checkpoint commit together).
package engine
