// Package bench is dripflow's benchmark suite (`make bench`): it measures
// dripflow side by side with what it replaces, in one run, and reports
// ratios, because absolute times on shared machines are noisy.
//
// Against local PostgreSQL and Redis it runs six sections:
//
//  1. inplace: an in-place backfill of Config.Rows rows (val = val + 1),
//     as one UPDATE statement (the floor), as a hand-written pgx keyset
//     loop on one and on two connections (what a user would write
//     instead), and through dripflow with the SQL store (in the data's
//     database, checkpoints in the batches' transactions) and with the
//     Redis store; and by its peers, what a Go team would pick instead:
//     River (a job per key range, the UPDATE and JobCompleteTx in one
//     transaction; its own module, bench/peers/river, built and run as a
//     process so River stays out of dripflow's go.mod) and plain asynq (a
//     task per key range, no checkpoint), at the same batch size and
//     concurrency. Every variant starts from a copy of one template
//     database, and every result is checked (each row bumped exactly once).
//  2. noop: Config.NoopBatches batches that do nothing through dripflow,
//     with each store, against as many no-op tasks through plain asynq at
//     the same concurrency.
//  3. flow: a flow (SQL source, upsert sink) copying the table into
//     another, against one INSERT … SELECT … ON CONFLICT DO UPDATE.
//  4. firstbatch: a scheduler and a worker as separate processes (this
//     binary re-executed; see IsProcess) with the SQL store: the time from
//     CreateRun returning to the first batch's StartedAt at each of
//     Config.Sizes, and the processes' peak RSS after a full run.
//  5. storeops: the store operations a batch costs (append, enqueue, get
//     run, claim, complete), driven straight through the SQL store on
//     PostgreSQL and the Redis store.
//  6. adaptive: the adaptive batch size (target_batch_ms) against the
//     hand-written loop at its best batch size (timed at each of
//     AdaptiveLoopSizes): dripflow starts at batch size 1000 with
//     Config.AdaptiveTarget and finds its size by itself; reported with
//     its final and median batch size and its longest batch against the
//     target.
//
// Sections 1–3 run the scheduler and the worker of their headline dripflow
// variants as separate processes (this binary re-executed through package
// run, as cmd/scheduler and cmd/worker run, with their defaults), the shape
// users deploy; the "-inproc" variants run them inside the benchmark's own
// process. Every dripflow run also reports how full it kept the worker's
// slots, from its batch rows (Pipeline). Every database and
// Redis database the benchmark makes is throwaway and removed at the end,
// also when it is interrupted. The Redis databases are reserved the way the
// tests reserve them (internal/testenv.RedisDB), so a benchmark and a test
// run never share one.
package bench
