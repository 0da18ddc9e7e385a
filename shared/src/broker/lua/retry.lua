--[[ retry: run a failed (dead-lettered) or revoked task again, with a fresh retry budget.
It leaves the dead letters, loses its expiry and outcome, and goes to the back of its queue.

KEYS[1]  task hash
KEYS[2]  dead-letter sorted set of the task's queue
KEYS[3]  pending list of the task's queue
KEYS[4]  the task's event log list
ARGV[1]  id suffix
ARGV[2]  events channel
ARGV[3]  task id
ARGV[4]  now, ms

Returns  'queued', 'missing', or the current state when it is not FAILURE or REVOKED
]]
local state = redis.call('HGET', KEYS[1], 's')
if not state then return 'missing' end
if state ~= 'FAILURE' and state ~= 'REVOKED' then return state end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'e', 'r', 'fa', 'sa', 'w', 'p', 'rv', 'eta', 'x')
redis.call('HSET', KEYS[1], 's', 'PENDING', 'rt', 0)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[4])
local id = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('RPUSH', KEYS[4], '{"id":' .. id .. ',"state":"PENDING","at":' .. ARGV[4] .. '}')
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 'queued'
