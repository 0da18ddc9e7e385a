--[[ promote: move waiting tasks whose time has come (from the scheduled set: countdown, eta;
or from the retry set: retry backoff) to the back of their queue's pending list. A task that expired while waiting is REVOKED instead and
never runs. Candidates come from a ZRANGEBYSCORE read; each is re-checked here, so any number
of workers may promote the same queue at once without moving a task twice. Every change is
appended to the task's event log.

KEYS[1]   the waiting set: the queue's scheduled or retry sorted set
KEYS[2]   pending list of the queue
KEYS[3]   workflow outbox list of the queue (an expired workflow member goes there)
KEYS[4..] per task, 2 keys: task hash, event log list; in the order of the ids in ARGV
ARGV[1]   now, ms
ARGV[2]   result TTL, seconds
ARGV[3]   events channel
ARGV[4]   queue name
ARGV[5..] id suffixes

Returns the number of tasks moved to pending
]]
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local ready = {}
for i = 5, #ARGV do
  local suffix = ARGV[i]
  local key, log = KEYS[4 + (i - 5) * 2], KEYS[5 + (i - 5) * 2]
  local due = redis.call('ZSCORE', KEYS[1], suffix)
  if due and tonumber(due) <= now then
    redis.call('ZREM', KEYS[1], suffix)
    local expires = tonumber(redis.call('HGET', key, 'x'))
    if redis.call('EXISTS', key) == 1 then
      local state = 'PENDING'
      if expires and expires <= now then
        state = 'REVOKED'
        redis.call('HSET', key, 's', state, 'fa', now,
          'e', '{"kind":"Expired","message":"expired before it started","retryable":false}')
        redis.call('EXPIRE', key, ttl)
        redis.call('EXPIRE', log, ttl)
        if redis.call('HEXISTS', key, 'wf') == 1 then redis.call('LPUSH', KEYS[3], suffix) end
      else
        redis.call('HSET', key, 's', state)
        ready[#ready + 1] = suffix
      end
      local id = redis.call('HINCRBY', key, 'v', 1)
      redis.call('RPUSH', log, '{"id":' .. id .. ',"state":"' .. state .. '","at":' .. now .. '}')
      redis.call('PUBLISH', ARGV[3], ARGV[4] .. '-' .. suffix)
    end
  end
end
if #ready > 0 then redis.call('LPUSH', KEYS[2], unpack(ready)) end
return #ready
