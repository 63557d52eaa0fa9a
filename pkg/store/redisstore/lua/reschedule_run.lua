-- ARGV[3] run id, ARGV[4] new start time (Unix microseconds).
local id = ARGV[3]
local rk = run_key(id)
local st = redis.call('HGET', rk, 'state')
if not st then return {'NOTFOUND', 'run'} end
if st ~= 'scheduled' then return {'TRANSITION', 'run', id, st, 'scheduled'} end
redis.call('HSET', rk, 'start_at', ARGV[4], 'updated_at', NOW)
return ok(rk)
