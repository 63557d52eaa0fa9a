-- ARGV[3] name, ARGV[4] expected watermark, ARGV[5] new watermark.
local fk = P .. 'flow:' .. ARGV[3]
if redis.call('EXISTS', fk) == 0 then return {'NOTFOUND', 'flow'} end
if (redis.call('HGET', fk, 'watermark') or '') ~= ARGV[4] then
  return {'CONFLICT', 'watermark moved'}
end
redis.call('HSET', fk, 'watermark', ARGV[5], 'watermark_updated_at', NOW, 'updated_at', NOW)
return ok(fk)
