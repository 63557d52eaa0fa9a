-- ARGV[3] definition, ARGV[4] created_by, ARGV[5..] the run's fields and
-- values. Replies the new run.
local def, by = ARGV[3], ARGV[4]
local id = fmtint(redis.call('INCR', P .. 'runs:seq'))
local fields = {'id', id, 'created_at', NOW, 'updated_at', NOW}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', run_key(id), unpack(fields))
redis.call('ZADD', P .. 'runs', id, id)
redis.call('ZADD', rstate_key('scheduled'), id, id)
redis.call('ZADD', P .. 'runs:def:' .. def, id, id)
if by ~= '' then redis.call('ZADD', P .. 'runs:by:' .. by, id, id) end
return ok(run_key(id))
