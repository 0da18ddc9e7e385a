--[[ slots: give back the concurrency slots of ids taken out of a worker's in-flight hash.
A queue's concurrency cap (limits.rs) counts the ids leased to all its workers in the limits
hash's field 'running': claim.lua adds the ids it leases, and every script that ends leases
(start.lua for the tasks it settles, finish.lua, requeue.lua for a stopping or crashed
worker) gives them back here, in the same step, so no retry, revoke, time limit, stop or
crash leaks a slot. Each freed slot also wakes one worker held back by the cap: an element on
the queue's freed-slots list, which such a worker blocks on (at most the cap's number are
kept, so a list nobody waits on stays small). Prepended to those scripts (see scripts.rs).

release_slots(limits, freed, n)  n ids left the in-flight hash; nothing happens unless the
                                 queue has a cap (one HGET)

A key's cap (keyed.lua) counts its running tasks the same way, in the queue's keyed hash
('r:<key>'; 's:<suffix>' names the key of each task that holds a key's slot), and a freed key
slot puts that key's oldest parked task back at the front of the pending list.

release_key_slots(keyed, parked, pending, suffixes, n)  the first n ids of suffixes left the
                                 in-flight hash; nothing happens unless some task holds a
                                 key's slot (one EXISTS)
]]
local function release_slots(limits, freed, n)
  if n == 0 then return end
  local cap = tonumber(redis.call('HGET', limits, 'cap'))
  if not cap then return end
  if redis.call('HINCRBY', limits, 'running', -n) < 0 then redis.call('HSET', limits, 'running', '0') end
  local wake = {}
  for i = 1, math.min(n, cap) do wake[i] = '1' end
  redis.call('LPUSH', freed, unpack(wake))
  redis.call('LTRIM', freed, 0, cap - 1)
end

local function release_key_slots(keyed, parked, pending, suffixes, n)
  if n == 0 or redis.call('EXISTS', keyed) == 0 then return end
  local fields = {}
  for i = 1, n do fields[i] = 's:' .. suffixes[i] end
  local keys = redis.call('HMGET', keyed, unpack(fields))
  for i = 1, n do
    local key = keys[i]
    if key then
      redis.call('HDEL', keyed, fields[i])
      if redis.call('HINCRBY', keyed, 'r:' .. key, -1) <= 0 then redis.call('HDEL', keyed, 'r:' .. key) end
      local waiting = redis.call('ZRANGEBYLEX', parked, '[' .. key .. '\n', '[' .. key .. '\n\255', 'LIMIT', 0, 1)
      if waiting[1] then
        redis.call('ZREM', parked, waiting[1])
        redis.call('RPUSH', pending, string.sub(waiting[1], #key + 2))
      end
    end
  end
end
