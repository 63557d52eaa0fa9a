-- ARGV[3] run id, ARGV[4] the most batches to cancel in this call.
--
-- Cancels up to ARGV[4] pending and enqueued batches. While some remain, the
-- run is left cancelling with cancel_open set (so no batch of it can start)
-- and the reply is {'MORE', n}: the caller calls again, and a later CancelRun
-- finishes a cancel that was interrupted. Once none remain, the run becomes
-- cancelling if batches are still running, else cancelled, and the reply is
-- the run.
local id, chunk = ARGV[3], tonumber(ARGV[4])
local rk = run_key(id)
local st = redis.call('HGET', rk, 'state')
if not st then return {'NOTFOUND', 'run'} end
local resuming = st == 'cancelling' and redis.call('HGET', rk, 'cancel_open') == '1'
if not (resuming or st == 'scheduled' or st == 'running' or st == 'paused') then
  return {'TRANSITION', 'run', id, st, 'cancelled'}
end
local n = 0
for _, from in ipairs({'pending', 'enqueued'}) do
  if n < chunk then
    local seqs = redis.call('ZRANGE', bstate_key(id, from), 0, fmtint(chunk - n - 1))
    move_batches(id, seqs, from, 'cancelled')
    for _, seq in ipairs(seqs) do
      redis.call('HSET', batch_key(id, seq), 'finished_at', NOW)
    end
    n = n + #seqs
  end
end
local left = redis.call('ZCARD', bstate_key(id, 'pending')) + redis.call('ZCARD', bstate_key(id, 'enqueued'))
if left > 0 then
  move_run(id, st, 'cancelling')
  redis.call('HSET', rk, 'cancel_open', '1')
  return {'MORE', n}
end
redis.call('HDEL', rk, 'cancel_open')
local running = tonumber(redis.call('HGET', rk, 'batches_running') or '0')
if running > 0 then
  move_run(id, st, 'cancelling')
else
  move_run(id, st, 'cancelled')
  redis.call('HSET', rk, 'finished_at', NOW)
end
return ok(rk)
