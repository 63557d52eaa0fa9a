-- ARGV[3] run id, ARGV[4] seq, ARGV[5] token, ARGV[6] new lease end.
local id, seq = ARGV[3], ARGV[4]
local bk = batch_key(id, seq)
local st = redis.call('HGET', bk, 'state')
if not st then return {'NOTFOUND', 'batch'} end
if st ~= 'running' or redis.call('HGET', bk, 'claim_token') ~= ARGV[5] then return {'STALE'} end
redis.call('HSET', bk, 'lease_until', ARGV[6], 'updated_at', NOW)
return ok(bk)
