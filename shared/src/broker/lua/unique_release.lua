--[[ unique_release: end a unique task's lock (unique_for) once the task started or finished,
if the lock is still that task's (a later task's lock is left alone).

KEYS[1]  the lock (keys.rs, Keys::unique)
ARGV[1]  the task id the lock must hold (the value is '<task id> unique')

Returns 1 when released, 0 otherwise
]]
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
