-- ARGV[3] run id, ARGV[4] seq ('' for every failed batch), ARGV[5] the most
-- batches to move in this call.
--
-- Moves failed batches back to pending. Once no failed batch is left (or the
-- one batch asked for has moved), a failed run goes back to running in the
-- same step; a failed run of kind flow is refused (at every step) while
-- another run of the flow is live. Replies {'OK', moved, 1} when done, {'OK', moved, 0} when failed
-- batches remain and the caller must call again.
local id, one, chunk = ARGV[3], ARGV[4], tonumber(ARGV[5])
local rk = run_key(id)
local rs = redis.call('HGET', rk, 'state')
if not rs then return {'NOTFOUND', 'run'} end
if rs == 'succeeded' or rs == 'cancelled' or rs == 'cancelling' then
  return {'TRANSITION', 'run', id, rs, 'running'}
end
local seqs
if one ~= '' then
  local st = redis.call('HGET', batch_key(id, one), 'state')
  if not st then return {'NOTFOUND', 'batch'} end
  if st ~= 'failed' then return {'TRANSITION', 'batch', id .. '/' .. one, st, 'pending'} end
  seqs = {one}
else
  seqs = redis.call('ZRANGE', bstate_key(id, 'failed'), 0, fmtint(chunk - 1))
end
if rs == 'failed' then
  local kd = redis.call('HMGET', rk, 'kind', 'definition')
  if kd[1] == 'flow' then
    local busy, st = flow_busy(kd[2], id)
    if busy then return busy_reply(kd[2], busy, st) end
  end
end
move_batches(id, seqs, 'failed', 'pending')
for _, seq in ipairs(seqs) do
  local bk = batch_key(id, seq)
  redis.call('HINCRBY', bk, 'retries', 1)
  redis.call('HDEL', bk, 'finished_at')
end
local done = 1
if one == '' and redis.call('ZCARD', bstate_key(id, 'failed')) > 0 then done = 0 end
if done == 1 and rs == 'failed' then
  move_run(id, rs, 'running')
  redis.call('HDEL', rk, 'finished_at', 'error')
end
return {'OK', #seqs, done}
