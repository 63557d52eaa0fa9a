-- ARGV[3] name. Removes a spec flow's definition and state, keeping its
-- versions and runs; refused while the flow has a live run.
local name = ARGV[3]
local dk = P .. 'def:' .. name
if redis.call('EXISTS', dk) == 0 then return {'NOTFOUND', 'definition'} end
if redis.call('HGET', dk, 'origin') ~= 'spec' then
  return {'CONFLICT', 'it is defined in code, not as a spec'}
end
local busy, st = flow_busy(name, '')
if busy then return busy_reply(name, busy, st) end
redis.call('DEL', dk, P .. 'flow:' .. name)
redis.call('ZREM', P .. 'defs', name)
redis.call('ZREM', P .. 'flows', name)
return {'OK'}
