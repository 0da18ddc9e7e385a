--[[ progress: record a running task's progress, append it to the task's history (field 'h',
history.lua, which keeps the last few KB) and announce it. Fenced like finish.lua: a run that
lost its lease cannot write progress over the newer run.

KEYS[1]  in-flight set of the worker on the task's queue
KEYS[2]  task hash
ARGV[1]  id suffix
ARGV[2]  delivery
ARGV[3]  progress JSON {current, total, message}
ARGV[4]  events channel
ARGV[5]  task id
ARGV[6]  now, ms

Returns 1 (stored) or 0 (refused: stale lease)
]]
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[2], 'd', 'h')
if f[1] ~= ARGV[2] then return 0 end
local h = next_event(f[2], 'P', ARGV[6], ARGV[3])
redis.call('HSET', KEYS[2], 'p', ARGV[3], 'h', h)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
