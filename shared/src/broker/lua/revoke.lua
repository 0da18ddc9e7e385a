--[[ revoke: stop a task from running. A queued or scheduled task leaves its list or set and
is REVOKED at once: it never starts. A running task is marked (field 'rv', the reason, and
the queue's revoking set, which finish.lua looks into once per batch); its worker is told on
the control channel to cancel it, and whatever the run then reports is stored as REVOKED
(finish.lua), also if its worker dies first (requeue.lua).

KEYS[1]  task hash
KEYS[2]  pending list of the task's queue
KEYS[3]  scheduled sorted set of the task's queue
KEYS[4]  workflow outbox list of the task's queue (a revoked workflow member goes there)
KEYS[5]  retry sorted set of the task's queue
KEYS[6]  stats hash of the task's queue (counts 'revoked')
KEYS[7]  revoking set of the task's queue (ids revoked while they ran)
KEYS[8]  webhooks stream of the task's queue (archive.lua)
KEYS[9]  archive stream of the task's queue, only when the archive is on (archive.lua)
ARGV[1]  id suffix
ARGV[2]  now, ms
ARGV[3]  result TTL, seconds
ARGV[4]  events channel
ARGV[5]  task id
ARGV[6]  reason

Returns  'revoked' (it will never run), 'signalled' (it is running; its worker must stop it),
         'finished' (already terminal: nothing done), 'missing' (no such task)
]]
local f = redis.call('HMGET', KEYS[1], 's', 'h', 'wf')
local state = f[1]
if not state then return 'missing' end
if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then return 'finished' end
local error = cjson.encode({kind = 'Revoked', message = ARGV[6], retryable = false})
if state == 'STARTED' then
  redis.call('HSET', KEYS[1], 'rv', error)
  redis.call('SADD', KEYS[7], ARGV[1])
  return 'signalled'
end
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local h = next_event(f[2], 'REVOKED', ARGV[2])
redis.call('HSET', KEYS[1], 's', 'REVOKED', 'e', error, 'h', h)
redis.call('EXPIRE', KEYS[1], ARGV[3])
local stream = archive_stream(7, 0)
if stream then archive(stream, KEYS[1], ARGV[5]) end
hand_over(stream)
webhook(webhooks_stream(7, 0), KEYS[1], ARGV[5], 'REVOKED')
redis.call('HINCRBY', KEYS[6], 'revoked', 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
if f[3] then redis.call('LPUSH', KEYS[4], ARGV[1]) end
return 'revoked'

