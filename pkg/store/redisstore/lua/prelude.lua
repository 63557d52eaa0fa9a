-- Shared by every script. ARGV[1] is the store's key prefix and ARGV[2] the
-- caller's clock in Unix microseconds; script arguments start at ARGV[3].
-- Keys are built here from the prefix, so the scripts touch keys they were not
-- given in KEYS: the store needs a single Redis (or a primary with replicas),
-- not Redis Cluster.
local P = ARGV[1]
local NOW = ARGV[2]

local function fmtint(n) return string.format('%d', n) end
local function run_key(id) return P .. 'run:' .. id end
local function batch_key(id, seq) return P .. 'run:' .. id .. ':b:' .. seq end
local function batches_key(id) return P .. 'run:' .. id .. ':batches' end
local function bstate_key(id, st) return P .. 'run:' .. id .. ':bstate:' .. st end
local function rstate_key(st) return P .. 'runs:state:' .. st end

local function terminal_run(st)
  return st == 'succeeded' or st == 'failed' or st == 'cancelled'
end

-- ok replies 'OK' followed by the hash at key, field, value, ...
local function ok(key)
  local r = redis.call('HGETALL', key)
  table.insert(r, 1, 'OK')
  return r
end

local function live_key(def) return P .. 'flowlive:' .. def end

-- track_live keeps flowlive:{definition}, the ids of a flow's live runs
-- (scheduled, running, paused or cancelling), as run id of that definition
-- moves from state from to state to.
local function track_live(id, from, to)
  if terminal_run(from) == terminal_run(to) then return end
  local kd = redis.call('HMGET', run_key(id), 'kind', 'definition')
  if kd[1] ~= 'flow' then return end
  if terminal_run(to) then
    redis.call('ZREM', live_key(kd[2]), id)
  else
    redis.call('ZADD', live_key(kd[2]), id, id)
  end
end

-- flow_busy returns the id and state of the oldest live run of flow def
-- other than run except, or nil. Its first call under a prefix indexes the
-- live flow runs stored before flowlive keys existed, and marks that done
-- in layout:flowlive.
local function flow_busy(def, except)
  if redis.call('EXISTS', P .. 'layout:flowlive') == 0 then
    for _, st in ipairs({'scheduled', 'running', 'paused', 'cancelling'}) do
      for _, rid in ipairs(redis.call('ZRANGE', rstate_key(st), 0, -1)) do
        local kd = redis.call('HMGET', run_key(rid), 'kind', 'definition')
        if kd[1] == 'flow' then redis.call('ZADD', live_key(kd[2]), rid, rid) end
      end
    end
    redis.call('SET', P .. 'layout:flowlive', '1')
  end
  for _, rid in ipairs(redis.call('ZRANGE', live_key(def), 0, 1)) do
    if rid ~= except then
      return rid, redis.call('HGET', run_key(rid), 'state')
    end
  end
  return nil
end

-- busy_reply is the reply refusing a change because flow def has live run
-- rid in state st.
local function busy_reply(def, rid, st)
  return {'FLOWBUSY', def, rid, st}
end

-- move_run moves run id from state from to state to, index included.
local function move_run(id, from, to)
  if from ~= to then
    redis.call('ZREM', rstate_key(from), id)
    redis.call('ZADD', rstate_key(to), id, id)
    track_live(id, from, to)
  end
  redis.call('HSET', run_key(id), 'state', to, 'updated_at', NOW)
end

-- move_batches moves the batches seqs of run id, all in state from, to state
-- to: each batch's state, both state indexes and the run's counters.
local function move_batches(id, seqs, from, to)
  local n = #seqs
  if n == 0 then return end
  for _, seq in ipairs(seqs) do
    redis.call('HSET', batch_key(id, seq), 'state', to, 'updated_at', NOW)
    if from ~= to then
      redis.call('ZREM', bstate_key(id, from), seq)
      redis.call('ZADD', bstate_key(id, to), seq, seq)
    end
  end
  if from ~= to then
    redis.call('HINCRBY', run_key(id), 'batches_' .. from, fmtint(-n))
    redis.call('HINCRBY', run_key(id), 'batches_' .. to, fmtint(n))
  end
end
