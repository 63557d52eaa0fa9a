-- ARGV[3] run id, ARGV[4] seq.
local id, seq = ARGV[3], ARGV[4]
local bk = batch_key(id, seq)
local st = redis.call('HGET', bk, 'state')
if not st then return {'NOTFOUND', 'batch'} end
if st ~= 'pending' then return {'TRANSITION', 'batch', id .. '/' .. seq, st, 'enqueued'} end
move_batches(id, {seq}, st, 'enqueued')
redis.call('HSET', bk, 'enqueued_at', NOW)
return ok(bk)
