-- ARGV[3] run id, ARGV[4] step.From, ARGV[5] step.To, ARGV[6] step.Done (0 or
-- 1), ARGV[7] step.Enqueue (0 or 1), ARGV[8..] lo, hi, planned size of each
-- new batch.
-- Replies {'OK', first seq}.
local id, from, to, done = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local state = 'pending'
if ARGV[7] == '1' then state = 'enqueued' end
local rk = run_key(id)
local st = redis.call('HGET', rk, 'state')
if not st then return {'NOTFOUND', 'run'} end
if st ~= 'running' and st ~= 'paused' then return {'CONFLICT', 'run is ' .. st} end
if redis.call('HGET', rk, 'plan_done') == '1' then return {'CONFLICT', 'planning is done'} end
local cursor = redis.call('HGET', rk, 'plan_cursor') or ''
if cursor ~= from then return {'CONFLICT', 'plan cursor moved'} end
local n = math.floor((#ARGV - 7) / 3)
local first = tonumber(redis.call('HGET', rk, 'last_seq') or '0') + 1
for i = 0, n - 1 do
  local seq = fmtint(first + i)
  local bk = batch_key(id, seq)
  redis.call('HSET', bk, 'state', state,
    'lo', ARGV[8 + 3 * i], 'hi', ARGV[9 + 3 * i], 'size', ARGV[10 + 3 * i], 'created_at', NOW, 'updated_at', NOW)
  if state == 'enqueued' then redis.call('HSET', bk, 'enqueued_at', NOW) end
  redis.call('ZADD', batches_key(id), seq, seq)
  redis.call('ZADD', bstate_key(id, state), seq, seq)
end
if n > 0 then
  redis.call('HINCRBY', rk, 'last_seq', fmtint(n))
  redis.call('HINCRBY', rk, 'batches_' .. state, fmtint(n))
end
redis.call('HSET', rk, 'plan_cursor', to, 'plan_done', done, 'updated_at', NOW)
return {'OK', first}
