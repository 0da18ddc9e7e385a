--[[ promote: move waiting tasks whose time has come (from the scheduled set: countdown, eta;
or from the retry set: retry backoff) to the back of their queue's pending list. A task that
expired while waiting is REVOKED instead and never runs. Candidates come from a ZRANGEBYSCORE
read; each is re-checked here, so any number of workers may promote the same queue at once
without moving a task twice. Every change is appended to the task's history (field 'h',
history.lua).

KEYS[1]   the waiting set: the queue's scheduled or retry sorted set
KEYS[2]   pending list of the queue
KEYS[3]   workflow outbox list of the queue (an expired workflow member goes there)
KEYS[4]   stats hash of the queue (counts 'revoked')
KEYS[5..] task hashes, in the order of the ids in ARGV
then, only for a queue given priorities: its priority bell and its pending lists of priority
          9 down to 1 (a task with a priority, field 'p', goes back to its level's list)
then      webhooks stream of the queue; archive stream of the queue, only when the archive
          is on (archive.lua)
ARGV[1]   now, ms
ARGV[2]   result TTL, seconds
ARGV[3]   events channel
ARGV[4]   queue name
ARGV[5..] id suffixes

Returns the number of tasks moved to pending
]]
local now = tonumber(ARGV[1])
local ready = {}
local n = #ARGV - 4
local levels = #KEYS - 4 - n >= 10 and 4 + n + 2 -- level L's list: KEYS[levels + 9 - L]
local stream = archive_stream(4, n + (levels and 10 or 0))
local hooks = webhooks_stream(4, n + (levels and 10 or 0))
local rang, leveled = false, 0
for i = 5, #ARGV do
  local suffix = ARGV[i]
  local key = KEYS[i]
  local due = redis.call('ZSCORE', KEYS[1], suffix)
  if due and tonumber(due) <= now then
    redis.call('ZREM', KEYS[1], suffix)
    local f = redis.call('HMGET', key, 's', 'h', 'x', 'wf', 'p')
    if f[1] then
      local expires = tonumber(f[3])
      if expires and expires <= now then
        local h = next_event(f[2], 'REVOKED', ARGV[1])
        redis.call('HSET', key, 's', 'REVOKED', 'h', h,
          'e', '{"kind":"Expired","message":"expired before it started","retryable":false}')
        redis.call('EXPIRE', key, ARGV[2])
        if stream then archive(stream, key, ARGV[4] .. '-' .. suffix) end
        webhook(hooks, key, ARGV[4] .. '-' .. suffix, 'REVOKED')
        if f[4] then redis.call('LPUSH', KEYS[3], suffix) end
        redis.call('HINCRBY', KEYS[4], 'revoked', 1)
      else
        local h = next_event(f[2], 'PENDING', ARGV[1])
        redis.call('HSET', key, 's', 'PENDING', 'h', h)
        if f[5] and levels then
          redis.call('LPUSH', KEYS[levels + 9 - tonumber(f[5])], suffix)
          rang, leveled = true, leveled + 1
        else
          ready[#ready + 1] = suffix
        end
      end
      redis.call('PUBLISH', ARGV[3], ARGV[4] .. '-' .. suffix)
    end
  end
end
if #ready > 0 then redis.call('LPUSH', KEYS[2], unpack(ready)) end
if rang and redis.call('EXISTS', KEYS[levels - 1]) == 0 then redis.call('LPUSH', KEYS[levels - 1], '1') end
hand_over(stream)
return #ready + leveled
