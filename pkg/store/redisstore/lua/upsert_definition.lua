-- ARGV[3] name, ARGV[4] kind, ARGV[5] description, ARGV[6] params schema,
-- ARGV[7] defaults, ARGV[8] config.
local name, kind = ARGV[3], ARGV[4]
local dk = P .. 'def:' .. name
redis.call('HSET', dk, 'name', name, 'kind', kind, 'description', ARGV[5],
  'params_schema', ARGV[6], 'defaults', ARGV[7], 'config', ARGV[8], 'updated_at', NOW)
redis.call('ZADD', P .. 'defs', 0, name)
if kind == 'flow' then
  local fk = P .. 'flow:' .. name
  if redis.call('EXISTS', fk) == 0 then
    redis.call('HSET', fk, 'name', name, 'active', '0', 'updated_at', NOW)
    redis.call('ZADD', P .. 'flows', 0, name)
  end
end
return ok(dk)
