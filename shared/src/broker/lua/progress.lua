--[[ progress: record a running task's progress, append it to the task's history (field 'h',
history.lua, which keeps the last few KB) and announce it. Fenced like finish.lua, by the
run's token in the worker's in-flight hash: a run that lost its lease cannot write progress
over the newer run.

KEYS[1]  in-flight hash of the worker on the task's queue (id suffix -> fencing token)
KEYS[2]  task hash
ARGV[1]  id suffix
ARGV[2]  delivery
ARGV[3]  progress JSON {current, total, message}
ARGV[4]  events channel
ARGV[5]  task id
ARGV[6]  now, ms

Returns 1 (stored) or 0 (refused: stale lease)
]]
local token = redis.call('HGET', KEYS[1], ARGV[1])
if token ~= ARGV[2] and (not token or string.match(token, '^c?w?(%d+)$') ~= ARGV[2]) then return 0 end
local f = redis.call('HMGET', KEYS[2], 'h', 'w')
log_event(KEYS[2], f[1], f[2], 'P', ARGV[6], ARGV[3], 'p', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
