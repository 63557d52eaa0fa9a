-- ARGV[3] name, ARGV[4] when the tick came due (Unix microseconds).
local fk = P .. 'flow:' .. ARGV[3]
if redis.call('EXISTS', fk) == 0 then return {'NOTFOUND', 'flow'} end
redis.call('HINCRBY', fk, 'missed_ticks', 1)
redis.call('HSET', fk, 'last_missed_tick', ARGV[4], 'updated_at', NOW)
return ok(fk)
