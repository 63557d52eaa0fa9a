-- ARGV[3] name, ARGV[4] active (0 or 1).
local fk = P .. 'flow:' .. ARGV[3]
if redis.call('EXISTS', fk) == 0 then return {'NOTFOUND', 'flow'} end
redis.call('HSET', fk, 'active', ARGV[4], 'updated_at', NOW)
return ok(fk)
