-- ARGV[3] run id, ARGV[4] worker.
--
-- Ends, now, the live leases the worker holds on the run's running batches
-- and replies 'OK' followed by their seqs.
local id, worker = ARGV[3], ARGV[4]
if redis.call('EXISTS', run_key(id)) == 0 then return {'NOTFOUND', 'run'} end
local out = {'OK'}
for _, seq in ipairs(redis.call('ZRANGE', bstate_key(id, 'running'), 0, -1)) do
  local bk = batch_key(id, seq)
  local w, lease = unpack(redis.call('HMGET', bk, 'worker', 'lease_until'))
  if w == worker and tonumber(lease or '0') > tonumber(NOW) then
    redis.call('HSET', bk, 'lease_until', NOW, 'updated_at', NOW)
    table.insert(out, seq)
  end
end
return out
