-- ARGV[3] run id.
--
-- In a cancelling run, cancels every running batch whose lease has expired
-- (its worker died) and, once no batch is running and no stepped cancel is
-- under way, moves the run to cancelled. Replies with the run.
local id = ARGV[3]
local rk = run_key(id)
local st = redis.call('HGET', rk, 'state')
if not st then return {'NOTFOUND', 'run'} end
if st ~= 'cancelling' then return ok(rk) end
local expired = {}
for _, seq in ipairs(redis.call('ZRANGE', bstate_key(id, 'running'), 0, -1)) do
  local lease = tonumber(redis.call('HGET', batch_key(id, seq), 'lease_until') or '0')
  if lease <= tonumber(NOW) then table.insert(expired, seq) end
end
move_batches(id, expired, 'running', 'cancelled')
for _, seq in ipairs(expired) do
  local bk = batch_key(id, seq)
  redis.call('HSET', bk, 'finished_at', NOW)
  redis.call('HDEL', bk, 'claim_token', 'lease_until')
end
local running = tonumber(redis.call('HGET', rk, 'batches_running') or '0')
if running == 0 and redis.call('HGET', rk, 'cancel_open') ~= '1' then
  move_run(id, st, 'cancelled')
  redis.call('HSET', rk, 'finished_at', NOW)
end
return ok(rk)
