--[[ progress: record a running task's progress, append it to the task's event log (the last
200 events are kept) and announce it. Fenced like finish.lua: a run that lost its lease
cannot write progress over the newer run.

KEYS[1]  in-flight set of the worker on the task's queue
KEYS[2]  task hash
KEYS[3]  the task's event log list
ARGV[1]  id suffix
ARGV[2]  delivery
ARGV[3]  progress JSON {current, total, message}
ARGV[4]  events channel
ARGV[5]  task id
ARGV[6]  now, ms

Returns 1 (stored) or 0 (refused: stale lease)
]]
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 or redis.call('HGET', KEYS[2], 'd') ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[2], 'p', ARGV[3])
local id = redis.call('HINCRBY', KEYS[2], 'v', 1)
redis.call('RPUSH', KEYS[3], '{"id":' .. id .. ',"progress":' .. ARGV[3] .. ',"at":' .. ARGV[6] .. '}')
redis.call('LTRIM', KEYS[3], -200, -1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
