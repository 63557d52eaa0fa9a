-- The claim rule, the Redis store's one statement of it (the SQL store's is
-- sqlstore/claim.go): a batch may be claimed when it is not finished, its
-- run is running, and no live claim holds it (pending, enqueued or failed,
-- or running under a lease that has expired).
-- ARGV[3] run id, ARGV[4] seq, ARGV[5] worker, ARGV[6] token, ARGV[7] lease
-- end (Unix microseconds). The checks run in the order the Store contract
-- gives: not found, finished, run not running, live claim.
local id, seq = ARGV[3], ARGV[4]
local bk = batch_key(id, seq)
local st = redis.call('HGET', bk, 'state')
if not st then return {'NOTFOUND', 'batch'} end
if st == 'succeeded' or st == 'cancelled' then return {'FINISHED', st} end
local rs = redis.call('HGET', run_key(id), 'state')
if not rs then return {'NOTFOUND', 'run'} end
if rs ~= 'running' then return {'NOTRUNNING', rs} end
if st == 'running' then
  local lease = tonumber(redis.call('HGET', bk, 'lease_until') or '0')
  if lease > tonumber(NOW) then return {'CLAIMED'} end
end
move_batches(id, {seq}, st, 'running')
redis.call('HINCRBY', bk, 'attempts', 1)
redis.call('HSET', bk, 'worker', ARGV[5], 'claim_token', ARGV[6], 'lease_until', ARGV[7], 'started_at', NOW)
redis.call('HDEL', bk, 'finished_at')
return ok(bk)
