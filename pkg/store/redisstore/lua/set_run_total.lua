-- ARGV[3] run id, ARGV[4] total, ARGV[5] estimated (0 or 1).
local rk = run_key(ARGV[3])
if redis.call('EXISTS', rk) == 0 then return {'NOTFOUND', 'run'} end
redis.call('HSET', rk, 'total', ARGV[4], 'total_estimated', ARGV[5], 'updated_at', NOW)
return {'OK'}
