--[[ shards_raise: raise a queue's number of shards, never lower it (a lower number would
leave the tasks of the higher shards unread by every worker).

KEYS[1]  hash of queue -> number of shards
ARGV[1]  queue
ARGV[2]  the number wanted

Returns  the queue's number of shards now
]]
local now = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '1')
local wanted = tonumber(ARGV[2])
if wanted > now then
  redis.call('HSET', KEYS[1], ARGV[1], wanted)
  return wanted
end
return now
