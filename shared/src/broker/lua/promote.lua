--[[ promote: move scheduled tasks (countdown, eta, retry backoff) whose time has come to the
back of their queue's pending list. A task that expired while waiting is REVOKED instead and
never runs. Candidates come from a ZRANGEBYSCORE read; each is re-checked here, so any number
of workers may promote the same queue at once without moving a task twice.

KEYS[1]   scheduled sorted set of the queue
KEYS[2]   pending list of the queue
KEYS[3]   workflow outbox list of the queue (an expired workflow member goes there)
KEYS[4..] task hashes, in the order of the ids in ARGV
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
  local key = KEYS[i - 1]
  local due = redis.call('ZSCORE', KEYS[1], suffix)
  if due and tonumber(due) <= now then
    redis.call('ZREM', KEYS[1], suffix)
    local expires = tonumber(redis.call('HGET', key, 'x'))
    if redis.call('EXISTS', key) == 0 then
      -- the record is gone (purged); nothing to run
    elseif expires and expires <= now then
      redis.call('HSET', key, 's', 'REVOKED', 'fa', now,
        'e', '{"kind":"Expired","message":"expired before it started","retryable":false}')
      redis.call('EXPIRE', key, ttl)
      redis.call('PUBLISH', ARGV[3], ARGV[4] .. '-' .. suffix)
      if redis.call('HEXISTS', key, 'wf') == 1 then redis.call('LPUSH', KEYS[3], suffix) end

    else
      redis.call('HSET', key, 's', 'PENDING')
      ready[#ready + 1] = suffix
      redis.call('PUBLISH', ARGV[3], ARGV[4] .. '-' .. suffix)
    end
  end
end
if #ready > 0 then redis.call('LPUSH', KEYS[2], unpack(ready)) end
return #ready
