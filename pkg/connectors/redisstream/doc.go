// Package redisstream is the Redis stream connector of flows, registered as
// kind "redisstream".
//
// Its Source is an offset source: positions are stream entry ids. The
// scheduler plans ranges with XRANGE from an exclusive start ("(id"), and a
// worker reads (lo, hi] with XRANGE, so a retried batch reads the same
// entries — as long as they are not trimmed (MAXLEN, MINID) or deleted
// (XDEL) in between. A record is the entry's fields (string values) plus the
// entry id under IDField ("_id" unless set).
//
// With a Group, the source keeps a consumer group in step with the flow so
// that XINFO GROUPS and XPENDING show dripflow's progress: the group is
// created (at 0, with MKSTREAM) when missing; planning a range delivers its
// entries to Consumer ("dripflow") with XREADGROUP, so they are pending while
// their batch is planned but not committed; and each entry is acknowledged
// (XACK) only after its batch's checkpoint committed. The store's watermark,
// not the group, decides where a run starts: a group behind it is moved
// forward (XGROUP SETID), never back.
//
// Its Sink appends each record with XADD (optionally trimmed with MAXLEN ~),
// deduplicated by message id: one Lua script sets a key per message id (SET
// NX with a TTL) and adds the entry only when the key was new, so a
// redelivered batch adds nothing twice while its keys live (DedupeTTL).
// Guarantee: idempotent.
//
// Both use a named connection holding a redis:// URL; the default, "redis",
// is DRIPFLOW_REDIS_URL. The source needs Redis 6.2 or later (exclusive
// ranges in XRANGE and XPENDING).
package redisstream
