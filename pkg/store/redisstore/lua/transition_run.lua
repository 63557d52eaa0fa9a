-- ARGV[3] run id, ARGV[4] target state, ARGV[5] error summary (kept when the
-- target is failed), ARGV[6..] the states the target may be reached from.
local id, to, msg = ARGV[3], ARGV[4], ARGV[5]
local rk = run_key(id)
local from = redis.call('HGET', rk, 'state')
if not from then return {'NOTFOUND', 'run'} end
local allowed = false
for i = 6, #ARGV do
  if ARGV[i] == from then allowed = true end
end
if not allowed then return {'TRANSITION', 'run', id, from, to} end
if terminal_run(from) and not terminal_run(to) then
  local kd = redis.call('HMGET', rk, 'kind', 'definition')
  if kd[1] == 'flow' then
    local busy, st = flow_busy(kd[2], id)
    if busy then return busy_reply(kd[2], busy, st) end
  end
end
move_run(id, from, to)
if to == 'running' then
  redis.call('HSETNX', rk, 'started_at', NOW)
  redis.call('HDEL', rk, 'error')
end
if terminal_run(to) then
  redis.call('HSET', rk, 'finished_at', NOW)
else
  redis.call('HDEL', rk, 'finished_at')
end
if to == 'failed' then
  if msg ~= '' then redis.call('HSET', rk, 'error', msg) else redis.call('HDEL', rk, 'error') end
end
if from == 'cancelling' then redis.call('HDEL', rk, 'cancel_open') end
return ok(rk)
