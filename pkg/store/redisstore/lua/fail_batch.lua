-- ARGV[3] run id, ARGV[4] seq, ARGV[5] token, ARGV[6] message, ARGV[7]
-- stack, ARGV[8] final (0 or 1), ARGV[9] duration (nanoseconds).
local id, seq = ARGV[3], ARGV[4]
local bk = batch_key(id, seq)
local st = redis.call('HGET', bk, 'state')
if not st then return {'NOTFOUND', 'batch'} end
if st == 'succeeded' or st == 'cancelled' then return {'FINISHED', st} end
if st ~= 'running' or redis.call('HGET', bk, 'claim_token') ~= ARGV[5] then return {'STALE'} end
local final = ARGV[8] == '1'
local to = 'enqueued'
if final then to = 'failed' end
move_batches(id, {seq}, st, to)
redis.call('HSET', bk, 'error', ARGV[6], 'error_stack', ARGV[7], 'duration', ARGV[9])
redis.call('HDEL', bk, 'claim_token', 'lease_until')
if final then redis.call('HSET', bk, 'finished_at', NOW) end
return ok(bk)
