--[[ schedule_delete: remove a schedule's definition and its state.

KEYS[1]   hash of definitions, name -> stored JSON {"source", "def"}
KEYS[2]   the schedule's state hash
ARGV[1]   name
ARGV[2]   the caller: 'api' may not delete a schedule whose source is 'settings';
          'settings' (a beat dropping schedules gone from the file) deletes only those

Returns
  1    deleted
  0    no such schedule (or, for 'settings', not one from the settings)
  -1   refused: the schedule is defined in the settings file
]]
local name, caller = ARGV[1], ARGV[2]
local current = redis.call('HGET', KEYS[1], name)
if not current then return 0 end

local ok, decoded = pcall(cjson.decode, current)
local from_settings = ok and type(decoded) == 'table' and decoded['source'] == 'settings'
if caller == 'api' and from_settings then return -1 end
if caller == 'settings' and not from_settings then return 0 end

redis.call('HDEL', KEYS[1], name)
redis.call('DEL', KEYS[2])
return 1
