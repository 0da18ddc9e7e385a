--[[ schedule_pause: pause or resume a schedule. Occurrences while paused are neither fired nor
caught up: resuming moves the cursor up to now.

KEYS[1]   hash of definitions
KEYS[2]   the schedule's state hash
ARGV[1]   name
ARGV[2]   '1' to pause, '0' to resume
ARGV[3]   now, ms since the epoch

Returns
  1    done (also when it already was in that state)
  0    no such schedule
]]
local name, paused, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[1], name) == 0 then return 0 end

if paused == '1' then
  redis.call('HSET', KEYS[2], 'paused', '1')
  return 1
end
if redis.call('HGET', KEYS[2], 'paused') == '1' then
  redis.call('HDEL', KEYS[2], 'paused')
  local cursor = tonumber(redis.call('HGET', KEYS[2], 'cursor'))
  if not cursor or cursor < now then redis.call('HSET', KEYS[2], 'cursor', now) end
end
return 1
