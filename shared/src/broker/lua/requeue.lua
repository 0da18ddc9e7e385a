--[[ requeue: give leased tasks back to the front of their queue, unchanged. Used by a worker
that stops gracefully (its own tasks) and by the reaper for a worker whose lease expired
(a crash). Not a failed attempt: the retry count is untouched. A task revoked while it ran is
settled as REVOKED instead of going back. When the worker's in-flight set is empty
afterwards, its lease on the queue ends. Every change is appended to the task's event log.

KEYS[1]   in-flight set the tasks are leased in
KEYS[2]   pending list of the queue
KEYS[3]   leases sorted set of the queue
KEYS[4]   workflow outbox list of the queue (a revoked workflow member goes there)
KEYS[5..] per task, 2 keys: task hash, event log list; in the order of the ids in ARGV
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
local now = tonumber(ARGV[5])
local moved = 0
for i = 7, #ARGV do
  local suffix = ARGV[i]
  local key, log = KEYS[5 + (i - 7) * 2], KEYS[6 + (i - 7) * 2]
  if redis.call('SREM', KEYS[1], suffix) == 1 and redis.call('EXISTS', key) == 1 then
    local revoked = redis.call('HGET', key, 'rv')
    local state = 'PENDING'
    if revoked then
      state = 'REVOKED'
      redis.call('HSET', key, 's', state, 'fa', now, 'e', revoked)
      redis.call('EXPIRE', key, tonumber(ARGV[6]))
      redis.call('EXPIRE', log, tonumber(ARGV[6]))
      if redis.call('HEXISTS', key, 'wf') == 1 then redis.call('LPUSH', KEYS[4], suffix) end
    else
      redis.call('HSET', key, 's', state)
      redis.call('HDEL', key, 'w', 'sa')
      redis.call('RPUSH', KEYS[2], suffix)
      moved = moved + 1
    end
    local id = redis.call('HINCRBY', key, 'v', 1)
    redis.call('RPUSH', log, '{"id":' .. id .. ',"state":"' .. state .. '","at":' .. now .. '}')
    redis.call('PUBLISH', ARGV[1], ARGV[2] .. '-' .. suffix)
  end
end
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[3]) end
return moved
