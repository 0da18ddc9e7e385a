--[[ purge: settle a batch of a purged queue's tasks. `DELETE /queues/{q}/pending` first renames
the pending list to the purging list (one O(1) step, so no worker takes a task meanwhile);
this script then takes ids from the purging list's tail in batches and marks each task
REVOKED (reason: purged) with the result TTL. Any worker's sweep finishes a purge that an
interrupted caller left behind.

KEYS[1]   purging list of the queue
KEYS[2]   workflow outbox list of the queue (a purged workflow member goes there)
KEYS[3]   stats hash of the queue (counts 'revoked')
KEYS[4..] task hashes of the ids of ARGV, which must be the
          purging list's tail in this order (LRANGE -n -1)
then      webhooks stream of the queue; archive stream of the queue, only when the archive
          is on (archive.lua)
ARGV[1]   now, ms
ARGV[2]   result TTL, seconds
ARGV[3]   events channel
ARGV[4]   queue name
ARGV[5..] id suffixes

Returns the number of tasks settled, or -1 if the tail changed (another purger got there
first: read it again)
]]
local n = #ARGV - 4
local tail = redis.call('LRANGE', KEYS[1], -n, -1)
if #tail ~= n then return -1 end
for i = 1, n do
  if tail[i] ~= ARGV[4 + i] then return -1 end
end
local revoked = 0
local stream = archive_stream(3, n)
local hooks = webhooks_stream(3, n)
local error = '{"kind":"Purged","message":"its queue was purged","retryable":false}'
for i = 1, n do
  local suffix = ARGV[4 + i]
  local key = KEYS[3 + i]
  local f = redis.call('HMGET', key, 's', 'h', 'wf')
  if f[1] == 'PENDING' then
    local h = next_event(f[2], 'REVOKED', ARGV[1])
    redis.call('HSET', key, 's', 'REVOKED', 'e', error, 'h', h)
    redis.call('EXPIRE', key, ARGV[2])
    if stream then archive(stream, key, ARGV[4] .. '-' .. suffix) end
    webhook(hooks, key, ARGV[4] .. '-' .. suffix, 'REVOKED')
    redis.call('PUBLISH', ARGV[3], ARGV[4] .. '-' .. suffix)
    if f[3] then redis.call('LPUSH', KEYS[2], suffix) end
    revoked = revoked + 1
  end
end
if revoked > 0 then redis.call('HINCRBY', KEYS[3], 'revoked', revoked) end
redis.call('LTRIM', KEYS[1], 0, -n - 1)
hand_over(stream)
return n
