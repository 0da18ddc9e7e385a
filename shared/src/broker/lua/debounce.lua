--[[ debounce: enqueue one debounced task (options.debounce). While the task its key names
still waits in the scheduled set, the call replaces that task's spec (its arguments and
options) and pushes its due time back to the call's; otherwise (no task yet, or it was
promoted, started, ended or revoked) the call is stored as a new scheduled task and the key
names it. A burst of calls so runs one task, with the last call's arguments, once the calls
stop for the debounce delay.

The waiting task's hash must be one of KEYS (Cluster), so the caller reads the key first and
passes the task it names; when the key names another task by the time the script runs, the
script changes nothing and returns what the key holds, and the caller calls again with that.

KEYS[1]  the debounce key (string: the id suffix of the burst's task)
KEYS[2]  scheduled sorted set of the queue
KEYS[3]  hash of the task the caller found in KEYS[1] (the new task's hash when none)
KEYS[4]  hash of the new task
KEYS[5]  listing log of the queue
KEYS[6]  stats hash of the queue
ARGV[1]  now, ms since the epoch
ARGV[2]  the suffix the caller found in KEYS[1] ('' for none)
ARGV[3]  the new task's id suffix
ARGV[4]  its spec (packed: record.rs)
ARGV[5]  its due time, ms since the epoch
ARGV[6]  the key's lifetime, ms (past the due time)
ARGV[7]  most entries the listing log keeps
ARGV[8]  its priority level ('' for 0)

Returns
  {1, ''}        stored as a new task
  {0, suffix}    merged into the waiting task with this suffix
  {-3, found}    the key holds another suffix ('' for none): call again with it
  {-2, suffix}   a task with the new id exists already
]]
local call = redis.call
local found = call('GET', KEYS[1]) or ''
if found ~= ARGV[2] then return {-3, found} end
if found ~= '' and call('HGET', KEYS[3], 's') == 'SCHEDULED' then
  call('HSET', KEYS[3], 't', ARGV[4], 'eta', ARGV[5])
  call('ZADD', KEYS[2], ARGV[5], found)
  call('PEXPIRE', KEYS[1], ARGV[6])
  return {0, found}
end
if call('EXISTS', KEYS[4]) == 1 then return {-2, ARGV[3]} end
call('HSET', KEYS[4], 's', 'SCHEDULED', 't', ARGV[4], 'eta', ARGV[5])
if ARGV[8] ~= '' then call('HSET', KEYS[4], 'p', ARGV[8]) end
call('ZADD', KEYS[2], ARGV[5], ARGV[3])
call('SET', KEYS[1], ARGV[3], 'PX', ARGV[6])
local listing_max = tonumber(ARGV[7])
-- '<creation ms>-<suffix>': a debounced task's spec always holds its creation ms (debounce.rs)
local over = call('LPUSH', KEYS[5], ARGV[1] .. '-' .. ARGV[3]) - listing_max
if over > 0 then
  call('LTRIM', KEYS[5], 0, listing_max - 1)
  call('HINCRBY', KEYS[6], 'listing_dropped', over)
end
call('HINCRBY', KEYS[6], 'enqueued', 1)
return {1, ''}
