--[[ requeue: give leased tasks back to the front of their queue, unchanged. Used by a worker
that stops gracefully (its own tasks) and by the reaper for a worker whose lease expired
(a crash). Not a failed attempt: the retry count is untouched. A task revoked while it ran is
settled as REVOKED instead of going back. When the worker's in-flight hash holds no id
afterwards, it is deleted and the worker's lease on the queue ends. Every change is appended
to the task's history (field 'h', history.lua).

KEYS[1]   in-flight hash the tasks are leased in (or the in-flight set of a worker of an
          earlier build, which kept its leased ids in a set: a crashed one's tasks still
          come back)
KEYS[2]   pending list of the queue
KEYS[3]   leases sorted set of the queue
KEYS[4]   workflow outbox list of the queue (a revoked workflow member goes there)
KEYS[5]   stats hash of the queue (counts 'revoked')
KEYS[6]   revoking set of the queue (ids revoked while they ran)
KEYS[7]   limits hash of the queue (the slots of the ids taken back are given back: slots.lua)
KEYS[8]   freed-slots list of the queue
KEYS[9]   keyed hash of the queue (a task that held its key's slot gives it back: slots.lua)
KEYS[10]  parked sorted set of the queue (the key's oldest parked task goes back to pending)
KEYS[11..] task hashes, in the order of the ids in ARGV
then, only for a queue given priorities: its priority bell and its pending lists of priority
          9 down to 1 (a task with a priority, field 'p', goes back to its level's list)
then      webhooks stream of the queue; archive stream of the queue, only when the archive
          is on (archive.lua)
ARGV[1]   events channel
ARGV[2]   queue name
ARGV[3]   the worker whose tasks these are
ARGV[4]   'own' (the worker itself) or an expiry check time in ms: then nothing happens
          unless that worker's lease ran out before it (the reaper's guard against a worker
          that came back to life)
ARGV[5]   now, ms
ARGV[6]   result TTL, seconds
ARGV[7..] id suffixes

Returns the number of tasks put back, or -1 when the lease turned out to be alive
]]
if ARGV[4] ~= 'own' then
  local lease = redis.call('ZSCORE', KEYS[3], ARGV[3])
  if lease and tonumber(lease) > tonumber(ARGV[4]) then return -1 end
end
local legacy = redis.call('TYPE', KEYS[1]).ok == 'set'
local n = #ARGV - 6
local levels = #KEYS - 10 - n >= 10 and 10 + n + 2 -- level L's list: KEYS[levels + 9 - L]
local stream = archive_stream(10, n + (levels and 10 or 0))
local hooks = webhooks_stream(10, n + (levels and 10 or 0))
local moved, released, taken_back = 0, 0, {}
for i = 7, #ARGV do
  local suffix = ARGV[i]
  local key = KEYS[i + 4]
  local f = redis.call('HMGET', key, 's', 'h', 'rv', 'wf', 'w', 'p', 'd')
  local held = redis.call(legacy and 'SREM' or 'HDEL', KEYS[1], suffix) == 1
  if held then
    released = released + 1
    taken_back[released] = suffix
  end
  if held and f[1] then
    if f[3] then
      redis.call('SREM', KEYS[6], suffix)
      log_event(key, f[2], f[5], 'REVOKED', ARGV[5], nil, 's', 'REVOKED', 'e', f[3])
      redis.call('EXPIRE', key, ARGV[6])
      if stream then archive(stream, key, ARGV[2] .. '-' .. suffix) end
      webhook(hooks, key, ARGV[2] .. '-' .. suffix, 'REVOKED')
      if f[4] then redis.call('LPUSH', KEYS[4], suffix) end
      redis.call('HINCRBY', KEYS[5], 'revoked', 1)
    else
      -- its start first, if not in the log yet; the run field goes, its count stays
      local h = next_event((folded(f[2], f[5])), 'PENDING', ARGV[5])
      redis.call('HSET', key, 's', 'PENDING', 'h', h, count_kept(f[7], f[5]))
      redis.call('HDEL', key, 'w', 'sa') -- 'sa': records from before the start time moved into 'w'
      if f[6] and levels then
        redis.call('RPUSH', KEYS[levels + 9 - tonumber(f[6])], suffix)
        if redis.call('EXISTS', KEYS[levels - 1]) == 0 then redis.call('LPUSH', KEYS[levels - 1], '1') end
      else
        redis.call('RPUSH', KEYS[2], suffix)
      end
      moved = moved + 1
    end
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. '-' .. suffix)
  end
end
release_slots(KEYS[7], KEYS[8], released)
release_key_slots(KEYS[9], KEYS[10], KEYS[2], taken_back, released)
-- Nothing left but the hash's '~' field (claim.lua): the lease ends, and the hash goes.
if legacy and redis.call('SCARD', KEYS[1]) == 0 or not legacy and redis.call('HLEN', KEYS[1]) <= 1 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
hand_over(stream)
return moved
