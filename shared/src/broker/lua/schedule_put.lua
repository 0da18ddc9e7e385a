--[[ schedule_put: create or replace a schedule's definition. A new or changed definition fires
only occurrences after now (its cursor moves up to now: no catch-up for times it never had);
an unchanged one keeps its state, so a beat that reloads the settings at start keeps the
cursor the misfire policy needs.

KEYS[1]   hash of definitions, name -> stored JSON {"source", "def"}
KEYS[2]   the schedule's state hash
ARGV[1]   name
ARGV[2]   the stored JSON
ARGV[3]   now, ms since the epoch
ARGV[4]   the caller's source: 'api' may not replace a definition whose source is 'settings';
          'settings' replaces anything

Returns
  1    created
  2    replaced (the definition changed)
  0    unchanged
  -1   refused: the schedule is defined in the settings file
]]
local name, stored, now, caller = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local current = redis.call('HGET', KEYS[1], name)

if not current then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], name, stored)
  redis.call('HSET', KEYS[2], 'cursor', now)
  return 1
end

if caller == 'api' then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and decoded['source'] == 'settings' then return -1 end
end

local cursor = tonumber(redis.call('HGET', KEYS[2], 'cursor'))
if current == stored then
  if not cursor then redis.call('HSET', KEYS[2], 'cursor', now) end
  return 0
end
redis.call('HSET', KEYS[1], name, stored)
if not cursor or cursor < now then redis.call('HSET', KEYS[2], 'cursor', now) end
return 2
