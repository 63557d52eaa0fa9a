-- ARGV[3] name, ARGV[4] description, ARGV[5] spec, ARGV[6] defaults,
-- ARGV[7] created_by, ARGV[8] create (0 or 1), ARGV[9] if_version (0: any).
--
-- Stores version max+1 of the flow's versions (specs:{name}, never emptied,
-- so a deleted flow's numbers are not reused) and makes the definition a
-- spec flow at that version, creating its state if missing. Replies the new
-- version's hash.
local name, desc, spec, defaults, by = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local create, ifv = ARGV[8] == '1', tonumber(ARGV[9])
local dk = P .. 'def:' .. name
local exists = redis.call('EXISTS', dk) == 1
local origin = redis.call('HGET', dk, 'origin') or 'code'
if create then
  if exists then return {'CONFLICT', 'a ' .. origin .. ' definition of that name exists'} end
else
  if not exists then return {'NOTFOUND', 'definition'} end
  if origin ~= 'spec' then return {'CONFLICT', 'it is defined in code, not as a spec'} end
  local cur = redis.call('HGET', dk, 'version') or '0'
  if ifv > 0 and tonumber(cur) ~= ifv then
    return {'CONFLICT', 'it is at version ' .. cur .. ', not ' .. ARGV[9]}
  end
end
local vk = P .. 'specs:' .. name
local last = redis.call('ZRANGE', vk, -1, -1)
local version = 1
if #last > 0 then version = tonumber(last[1]) + 1 end
local v = fmtint(version)
local sk = P .. 'spec:' .. name .. ':' .. v
redis.call('HSET', sk, 'name', name, 'version', v, 'spec', spec, 'description', desc,
  'defaults', defaults, 'created_by', by, 'created_at', NOW)
redis.call('ZADD', vk, v, v)
redis.call('DEL', dk)
redis.call('HSET', dk, 'name', name, 'kind', 'flow', 'description', desc, 'defaults', defaults,
  'config', spec, 'origin', 'spec', 'version', v, 'updated_at', NOW)
redis.call('ZADD', P .. 'defs', 0, name)
local fk = P .. 'flow:' .. name
if redis.call('EXISTS', fk) == 0 then
  redis.call('HSET', fk, 'name', name, 'active', '0', 'updated_at', NOW)
  redis.call('ZADD', P .. 'flows', 0, name)
end
return ok(sk)
