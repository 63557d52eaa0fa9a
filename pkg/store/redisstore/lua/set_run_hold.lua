-- ARGV[3] run id, ARGV[4] the hold as JSON ('' clears it).
local rk = run_key(ARGV[3])
if redis.call('EXISTS', rk) == 0 then return {'NOTFOUND', 'run'} end
if ARGV[4] == '' then
  redis.call('HDEL', rk, 'held')
  redis.call('HSET', rk, 'updated_at', NOW)
else
  redis.call('HSET', rk, 'held', ARGV[4], 'updated_at', NOW)
end
return {'OK'}
