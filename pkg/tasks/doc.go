// Package tasks is dripflow's only door to the asynq queue: the batch task
// type and payload, deterministic task ids, enqueueing with retention, the
// queue inspection the scheduler's reconciler needs, and the worker server.
//
// One asynq task carries one batch. Its id is deterministic —
// "<run>:<seq>" for a batch's first life and "<run>:<seq>:<retry>" after it
// was retried by hand — so enqueueing a batch twice is a no-op. The store,
// not the queue, is the source of truth: a task is only a wake-up call for a
// batch, and the worker's claim on the store decides whether it runs.
package tasks
