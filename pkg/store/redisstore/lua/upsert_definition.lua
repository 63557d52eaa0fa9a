-- ARGV[3] name, ARGV[4] kind, ARGV[5] description, ARGV[6] params schema,
-- ARGV[7] defaults, ARGV[8] config. A flow stored as a spec is not replaced.
local name, kind = ARGV[3], ARGV[4]
local dk = P .. 'def:' .. name
if redis.call('HGET', dk, 'origin') == 'spec' then
  return {'CONFLICT', 'it is a flow stored as a spec (version ' .. (redis.call('HGET', dk, 'version') or '?') .. ')'}
end
redis.call('HSET', dk, 'name', name, 'kind', kind, 'description', ARGV[5],
  'params_schema', ARGV[6], 'defaults', ARGV[7], 'config', ARGV[8], 'origin', 'code', 'updated_at', NOW)
redis.call('HDEL', dk, 'version')
redis.call('ZADD', P .. 'defs', 0, name)
if kind == 'flow' then
  local fk = P .. 'flow:' .. name
  if redis.call('EXISTS', fk) == 0 then
    redis.call('HSET', fk, 'name', name, 'active', '0', 'updated_at', NOW)
    redis.call('ZADD', P .. 'flows', 0, name)
  end
end
return ok(dk)
