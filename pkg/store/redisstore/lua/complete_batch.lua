-- ARGV[3] run id, ARGV[4] seq, ARGV[5] token, ARGV[6] rows read, ARGV[7]
-- rows written, ARGV[8] rows skipped, ARGV[9] duration (nanoseconds).
local id, seq = ARGV[3], ARGV[4]
local bk = batch_key(id, seq)
local st = redis.call('HGET', bk, 'state')
if not st then return {'NOTFOUND', 'batch'} end
if st == 'succeeded' or st == 'cancelled' then return {'FINISHED', st} end
if st ~= 'running' or redis.call('HGET', bk, 'claim_token') ~= ARGV[5] then return {'STALE'} end
move_batches(id, {seq}, st, 'succeeded')
redis.call('HSET', bk, 'rows_read', ARGV[6], 'rows_written', ARGV[7], 'rows_skipped', ARGV[8],
  'duration', ARGV[9], 'finished_at', NOW)
redis.call('HDEL', bk, 'error', 'error_stack', 'claim_token', 'lease_until')
local rk = run_key(id)
redis.call('HINCRBY', rk, 'rows_read', ARGV[6])
redis.call('HINCRBY', rk, 'rows_written', ARGV[7])
redis.call('HINCRBY', rk, 'rows_skipped', ARGV[8])
return ok(bk)
