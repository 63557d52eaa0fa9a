-- ARGV[3] definition, ARGV[4] created_by, ARGV[5] kind, ARGV[6..] the run's
-- fields and values. Replies the new run; a run of kind flow is refused
-- while the flow has a live run.
local def, by, kind = ARGV[3], ARGV[4], ARGV[5]
if kind == 'flow' then
  local busy, st = flow_busy(def, '')
  if busy then return busy_reply(def, busy, st) end
end
local id = fmtint(redis.call('INCR', P .. 'runs:seq'))
local fields = {'id', id, 'created_at', NOW, 'updated_at', NOW}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', run_key(id), unpack(fields))
redis.call('ZADD', P .. 'runs', id, id)
redis.call('ZADD', rstate_key('scheduled'), id, id)
redis.call('ZADD', P .. 'runs:def:' .. def, id, id)
redis.call('ZADD', P .. 'runs:kind:' .. kind, id, id)
if by ~= '' then redis.call('ZADD', P .. 'runs:by:' .. by, id, id) end
if kind == 'flow' then redis.call('ZADD', live_key(def), id, id) end
return ok(run_key(id))
