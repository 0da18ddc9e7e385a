--[[ finish: settle finished runs and end their leases (the acknowledgement after completion):
  SUCCESS  store the result; the record expires after the result TTL
  FAILURE  store the error; the id joins the queue's dead letters (capped by count and age)
           and the record lives as long as a dead letter may
  RETRY    store the error, count the retry, and schedule the next attempt at its due time
A run revoked while it ran (in the queue's revoking set, its reason in the task's field 'rv',
both set by revoke.lua) is stored as REVOKED instead. A workflow member that ended (not
RETRY) is also put in the queue's workflow outbox, in the same step, so the workflow hears of
it even if this worker dies right after. Per-minute counts feed throughput charts.
Fenced: a run is stored only if the worker's in-flight hash still holds its token (start.lua:
'<flags><delivery>', flag 'c' for a task with a callback URL, 'w' for a workflow member); a
run whose lease was lost (the id taken back, or a newer delivery started) is refused, so the
newer run's outcome stands. A run flagged 'c' that ended (not RETRY) is handed to the
webhooks stream (archive.lua) in the same step.
Reads nothing of a SUCCESS or FAILURE run's task: its ending goes to field 'z' (its time; the
event's kind is the state), which readers and the next writer of the history fold in as the
newest event (history.lua). RETRY and REVOKED, rare, are logged in the history ('h') here.

KEYS[1]   in-flight hash of this worker on this queue (id suffix -> fencing token)
KEYS[2]   stats hash of the queue
KEYS[3]   retry sorted set of the queue (ids waiting for their next attempt)
KEYS[4]   dead-letter sorted set of the queue
KEYS[5]   workflow outbox list of the queue
KEYS[6]   per-minute counts hash of the queue (fields s:<minute>, f:<minute>)
KEYS[7]   revoking set of the queue (ids revoked while they ran)
KEYS[8]   limits hash of the queue (the slots of the runs stored are given back: slots.lua)
KEYS[9]   freed-slots list of the queue
KEYS[10]  keyed hash of the queue (a run that held its key's slot gives it back: slots.lua)
KEYS[11]  parked sorted set of the queue (the key's oldest parked task goes back to pending)
KEYS[12]  pending list of the queue
KEYS[13..] task hashes, in the order of the task groups in ARGV
then      webhooks stream of the queue (an ending of a task flagged 'c'); archive stream of
          the queue, only when the archive is on (archive.lua): every ending but RETRY is
          handed over to it
ARGV[1]   now, ms
ARGV[2]   result TTL, seconds
ARGV[3]   events channel (one message per call: the changed task ids, space-separated)
ARGV[4]   queue name
ARGV[5]   dead letters kept at most (count)
ARGV[6]   dead letters kept at most (age, seconds)
ARGV[7..] per task, 4 values: id suffix, delivery, outcome (SUCCESS | FAILURE |
          'RETRY <due ms>'), result or error JSON

Returns one string with a digit per task, in order: 1 (stored), 2 (stored, and it is a
workflow member in the outbox) or 0 (refused: stale lease). One value to parse, not one per
task.
]]
local call, tonumber = redis.call, tonumber -- locals: a global is a table lookup at each use
local now, ttl = tonumber(ARGV[1]), ARGV[2]
-- Timestamps and counters go back to Redis as strings: formatting a Lua number (a double)
-- costs an snprintf each time, which profiling showed as a tenth of Redis' work.
local at = ARGV[1]
local dead_max, dead_age = tonumber(ARGV[5]), tonumber(ARGV[6])
local STRIDE = 4
local n = (#ARGV - 6) / STRIDE
local stream = archive_stream(12, n)
local hooks = webhooks_stream(12, n)
-- Tables are filled by index: '#t' is a search each time.
local out = {}
local ended, n_ended = {}, 0
-- One read of the fencing tokens and one of the revoking set for the whole batch (a
-- redis.call costs more than the command); the set is only looked into when it exists.
local suffixes = {}
for i = 0, n - 1 do suffixes[i + 1] = ARGV[7 + i * STRIDE] end
local tokens = call('HMGET', KEYS[1], unpack(suffixes))
local revoking = call('EXISTS', KEYS[7]) == 1 and call('SMISMEMBER', KEYS[7], unpack(suffixes))
local counts = {SUCCESS = 0, FAILURE = 0, RETRY = 0, REVOKED = 0}
-- A RETRY or REVOKED run (rare) is logged in 'h', its start folded in first (history.lua),
-- with the fields given (state first).
local function log_ending(key, state, ...)
  local g = call('HMGET', key, 'h', 'w')
  log_event(key, g[1], g[2], state, at, nil, 's', state, ...)
end
for i = 0, n - 1 do
  local a = 7 + i * STRIDE
  local suffix, delivery, state, payload = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local due
  if state ~= 'SUCCESS' and state ~= 'FAILURE' then state, due = 'RETRY', string.match(state, '^RETRY (%d+)$') end
  local key = KEYS[13 + i]
  local token = tokens[i + 1]
  -- Flags only when the token is not the bare delivery (most runs: one comparison).
  local flags = token and token ~= delivery and string.match(token, '^(c?w?)%d+$')
  local fenced = token == delivery or (flags and string.sub(token, #flags + 1) == delivery)
  local member = flags and string.find(flags, 'w', 1, true)
  if fenced then
    local keep = ttl
    local revoked = revoking and revoking[i + 1] == 1
    if revoked then
      call('SREM', KEYS[7], suffix)
      revoked = call('HGET', key, 'rv')
    end
    if revoked then
      state = 'REVOKED'
      log_ending(key, state, 'e', revoked)
    elseif state == 'SUCCESS' then
      call('HSET', key, 's', state, 'r', payload, 'z', at)
    elseif state == 'FAILURE' then
      call('HSET', key, 's', state, 'e', payload, 'z', at)
      if dead_age > tonumber(ttl) then keep = ARGV[6] end
      call('ZADD', KEYS[4], at, suffix)
    else
      log_ending(key, 'RETRY', 'e', payload, 'eta', due)
      call('HINCRBY', key, 'rt', 1)
      call('ZADD', KEYS[3], due, suffix)
      keep = nil
    end
    if keep then
      call('EXPIRE', key, keep)
      if stream then archive(stream, key, ARGV[4] .. '-' .. suffix) end
      if flags and string.byte(flags) == 99 then -- 'c'
        hand_webhook(hooks, ARGV[4] .. '-' .. suffix, state)
      end
    end
    n_ended = n_ended + 1
    ended[n_ended] = suffix
    counts[state] = counts[state] + 1
    if state ~= 'RETRY' and member then
      call('LPUSH', KEYS[5], suffix)
      out[i + 1] = '2'
    else
      out[i + 1] = '1'
    end
  else
    out[i + 1] = '0'
  end
end
local minute = math.floor(now / 60000)
local function per_minute(prefix, n)
  if call('HINCRBY', KEYS[6], prefix .. minute, n) == n then
    -- first count of a new minute: drop the fields older than an hour
    for _, field in ipairs(call('HKEYS', KEYS[6])) do
      if tonumber(string.sub(field, 3)) < minute - 60 then call('HDEL', KEYS[6], field) end
    end
  end
end
if counts.SUCCESS > 0 then
  call('HINCRBY', KEYS[2], 'succeeded', counts.SUCCESS)
  per_minute('s:', counts.SUCCESS)
end
if counts.REVOKED > 0 then call('HINCRBY', KEYS[2], 'revoked', counts.REVOKED) end
if counts.RETRY > 0 then call('HINCRBY', KEYS[2], 'retried', counts.RETRY) end
if counts.FAILURE > 0 then
  call('HINCRBY', KEYS[2], 'failed', counts.FAILURE)
  per_minute('f:', counts.FAILURE)
  call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - dead_age * 1000)
  call('ZREMRANGEBYRANK', KEYS[4], 0, -dead_max - 1)
end
if n_ended > 0 then call('HDEL', KEYS[1], unpack(ended)) end
release_slots(KEYS[8], KEYS[9], n_ended)
release_key_slots(KEYS[10], KEYS[11], KEYS[12], ended, n_ended)
-- The task ids, '<queue>-<suffix>' each, joined in one step (no string per task).
local prefix = ARGV[4] .. '-'
if n_ended > 0 then call('PUBLISH', ARGV[3], prefix .. table.concat(ended, ' ' .. prefix)) end
hand_over(stream)
return table.concat(out)
