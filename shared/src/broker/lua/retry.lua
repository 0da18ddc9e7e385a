--[[ retry: run a failed (dead-lettered) or revoked task again, with a fresh retry budget.
It leaves the dead letters, loses its expiry and outcome, and goes to the back of its queue.

KEYS[1]  task hash
KEYS[2]  dead-letter sorted set of the task's queue
KEYS[3]  pending list of the task's queue
ARGV[1]  id suffix
ARGV[2]  events channel
ARGV[3]  task id
ARGV[4]  now, ms

Returns  'queued', 'missing', or the current state when it is not FAILURE or REVOKED
]]
local f = redis.call('HMGET', KEYS[1], 's', 'h', 'z', 'w', 'd')
local state = f[1]
if not state then return 'missing' end
if state ~= 'FAILURE' and state ~= 'REVOKED' then return state end
redis.call('ZREM', KEYS[2], ARGV[1])
-- ('fa' only exists in records stored before the finish time was read off the history)
redis.call('HDEL', KEYS[1], 'e', 'r', 'fa', 'sa', 'w', 'p', 'rv', 'eta', 'x', 'z')
local h = next_event((folded(f[2], f[4], state, f[3])), 'PENDING', ARGV[4])
redis.call('HSET', KEYS[1], 's', 'PENDING', 'rt', 0, 'h', h, count_kept(f[5], f[4]))
redis.call('PERSIST', KEYS[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 'queued'
