-- ARGV[3] run id, ARGV[4] the event without its id (JSON), ARGV[5] its key
-- ('' for none), ARGV[6] the most events a run keeps.
-- run:{id}:events maps event id -> JSON, run:{id}:evkeys key -> event id;
-- the run's hash counts its events in last_event.
-- Replies OK, inserted (1 or 0), the event's id and its JSON.
local id = ARGV[3]
local rk = run_key(id)
if redis.call('EXISTS', rk) == 0 then return {'NOTFOUND', 'run'} end
local ek = rk .. ':events'
local kk = rk .. ':evkeys'
local key = ARGV[5]
if key ~= '' then
  local prev = redis.call('HGET', kk, key)
  if prev then
    local payload = redis.call('HGET', ek, prev)
    if payload then return {'OK', '0', prev, payload} end
    redis.call('HDEL', kk, key)
  end
end
local n = redis.call('HINCRBY', rk, 'last_event', 1)
local nid = fmtint(n)
redis.call('HSET', ek, nid, ARGV[4])
if key ~= '' then redis.call('HSET', kk, key, nid) end
local max = tonumber(ARGV[6])
if n > max then
  -- Drop the oldest event, and free its key.
  local old = fmtint(n - max)
  local payload = redis.call('HGET', ek, old)
  if payload then
    redis.call('HDEL', ek, old)
    local decoded, ev = pcall(cjson.decode, payload)
    if decoded and type(ev) == 'table' and type(ev.key) == 'string' and ev.key ~= '' then
      if redis.call('HGET', kk, ev.key) == old then redis.call('HDEL', kk, ev.key) end
    end
  end
end
return {'OK', '1', nid, ARGV[4]}
