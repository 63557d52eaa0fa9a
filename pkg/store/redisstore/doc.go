// Package redisstore implements store.Store on Redis with go-redis v9.
//
// Every change that touches more than one key, or reads before it writes, is
// one Lua script (run with EVALSHA), so it is atomic: creating a run, moving
// a run or a batch between states together with the run's counters and the
// index sets, planning a step, claiming, completing and failing a batch,
// retrying, appending a run event, upserting a definition, saving and deleting a spec flow,
// activating a flow, advancing its watermark and counting its missed ticks. Scripts never read Redis's clock: the caller's clock
// (Config.Now) is passed in, in Unix microseconds, so leases behave the same
// whatever the server's time.
//
// # Not Redis Cluster
//
// The scripts build the keys they touch from the store's prefix instead of
// receiving them all as KEYS, and a listing reads keys that live in different
// hash slots. The store therefore needs one Redis primary (standalone, or
// behind Sentinel); New refuses a *redis.ClusterClient or *redis.Ring with
// ErrCluster, and Open a redis-cluster:// URL (docs/storage.md says why the
// keys are not hash-tagged into one slot instead).
//
// # Key layout
//
// Every key starts with Config.Prefix (default "dripflow:"):
//
//	runs:seq                   string  last run id (INCR)
//	run:{id}                   hash    a run: its fields, options, counters
//	                                   (batches_{state}, rows_*), last_seq
//	                                   (batches planned), cancel_open (a
//	                                   stepped cancel is under way)
//	runs                       zset    every run id, scored by id
//	runs:state:{state}         zset    run ids in that state
//	runs:def:{definition}      zset    run ids of that definition
//	runs:by:{created_by}       zset    run ids created by that identity
//	runs:kind:{kind}           zset    run ids of that kind (backfill, flow)
//	layout:runkind             string  "1" once the runs stored before
//	                                   runs:kind keys existed were indexed
//	                                   (by the first listing by kind)
//	run:{id}:b:{seq}           hash    a batch (its size: the planned size,
//	                                   absent on batches planned before it
//	                                   was kept, read as 0)
//	run:{id}:batches           zset    the run's batch seqs, scored by seq
//	run:{id}:bstate:{state}    zset    the run's batch seqs in that state
//	run:{id}:events            hash    the run's timeline: event id -> the
//	                                   event as JSON; ids count 1, 2, … in
//	                                   the run hash's last_event; the newest
//	                                   store.MaxRunEvents are kept
//	run:{id}:evkeys            hash    event key -> id of the run's event
//	                                   with that key (AppendRunEvent)
//	defs                       zset    definition names (score 0: by name)
//	def:{name}                 hash    a definition
//	flows                      zset    flow names (score 0: by name)
//	flow:{name}                hash    a flow's state, watermark and missed
//	                                   ticks
//	flowlive:{name}            zset    ids of the flow's live runs (of kind
//	                                   flow, scheduled, running, paused or
//	                                   cancelling): one at most
//	layout:flowlive            string  "1" once the live runs stored before
//	                                   flowlive keys existed were indexed
//	specs:{name}               zset    a spec flow's versions, scored by
//	                                   version; kept after DeleteFlowSpec
//	spec:{name}:{version}      hash    one version of a spec flow
//
// Times are Unix microseconds (UTC when read back); durations are
// nanoseconds; JSON values are stored as their text. A field that is absent
// reads as zero, empty or nil, so a fresh batch stores only what it has. No
// key is created per claim or per attempt: the number of keys grows with runs
// and batches only, and nothing expires.
//
// # One live run per flow
//
// Every script that moves a run into or out of a terminal state goes through
// move_run (prelude.lua), which keeps flowlive:{name} in step; creating a
// flow run, moving a failed one back to running (TransitionRun,
// RetryBatches: at each of its steps) and DeleteFlowSpec check it in the
// same script, so they are atomic with the change they guard. The first
// such check under a prefix indexes the live flow runs already stored
// (from runs:state:*), so a store written by an older dripflow needs no
// migration.
//
// Listings are keyset scans over the most selective index (by cardinality)
// with the other filters checked on each hash, continuing until the page is
// full; several states are merged from their per-state indexes. A listing
// is not a snapshot: a run or batch that changes state while it is listed
// may be missed or shown once in its new state.
//
// CancelRun and RetryBatches of every failed batch work in steps of at most
// 1000 batches so that no script blocks Redis for long; each step is atomic
// and keeps the counters exact. See CancelRun and RetryBatches for what an
// observer can see between steps.
package redisstore
