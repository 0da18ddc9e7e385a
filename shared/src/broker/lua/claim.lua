--[[ claim: lease up to N pending tasks to one worker by moving their ids from the queue's
pending list into the worker's in-flight hash, and renew the worker's lease on the queue, in
one step: a task is never held without a lease the reaper can see (invariants 2 and 3).
The in-flight hash maps each leased id to its fencing token: '' until start.lua runs it, then
the delivery it started (see start.lua); its field '~' is no id (see below).
The worker then marks them started with start.lua, which needs their keys.

Replayable: the ids taken are remembered with the caller's claim token, so a worker whose
connection broke before the reply arrived asks again with the same token and gets the same
ids, instead of leaving them leased to itself and unknown to it.

KEYS[1]  pending list of the queue
KEYS[2]  in-flight hash of this worker on this queue (id suffix -> fencing token)
KEYS[3]  pause flag of the queue
KEYS[4]  leases sorted set of the queue (worker id -> lease expiry, ms)
KEYS[5]  this worker's last claim on this queue ('<token> <id> <id>...')
KEYS[6]  priority bell of the queue: present while its priority lists may hold ids (keys.rs)
KEYS[7..15] only from a worker that knows the queue has priorities: its pending lists of
         priority 9 down to 1, taken before the pending list (level 0), oldest first in each
ARGV[1]  the most ids to take
ARGV[2]  worker id
ARGV[3]  lease expiry, ms
ARGV[4]  claim token (new for every claim; the same when asking again after an error)

Returns  -1 when the queue is paused; -2 when the bell rings and KEYS holds no priority lists
         (ask again with them); otherwise the ids taken, oldest first, in one string,
         space-separated ('' for none): one value to parse instead of one per id
]]
local call, tonumber = redis.call, tonumber -- locals: a global is a table lookup at each use
local last = call('GET', KEYS[5])
-- Asked again with the same token (the reply was lost): the same ids. A new claim, the
-- common case, just compares the token.
if last and string.sub(last, 1, #ARGV[4] + 1) == ARGV[4] .. ' ' then
  return string.sub(last, #ARGV[4] + 2)
end
-- One lookup for both the pause flag and the bell: a queue never given priorities costs
-- nothing more than the pause check it always had.
local ids
if call('EXISTS', KEYS[3], KEYS[6]) > 0 then
  if call('EXISTS', KEYS[3]) == 1 then return -1 end
  if #KEYS < 15 then return -2 end
  -- Highest priority first, then level 0; a list holds its ids oldest at the right.
  local want = tonumber(ARGV[1])
  ids = {}
  for k = 7, 16 do
    local got = call('RPOP', k == 16 and KEYS[1] or KEYS[k], want - #ids)
    if got then
      for i = 1, #got do ids[#ids + 1] = got[i] end
      if #ids >= want then break end
    end
  end
  if call('EXISTS', unpack(KEYS, 7, 15)) == 0 then call('DEL', KEYS[6]) end
  if #ids == 0 then return '' end
else
  ids = call('RPOP', KEYS[1], tonumber(ARGV[1]))
  if not ids then return '' end
end
-- A hash of up to 128 short fields is kept as a listpack, where finding a field scans the
-- whole hash: every batch read or write of tokens would cost O(n^2). A field longer than
-- hash-max-listpack-value makes it a hash table for good (Redis never turns one back), so
-- the in-flight hash starts with one ('~', which holds no id), whatever the server's settings.
if call('EXISTS', KEYS[2]) == 0 then call('HSET', KEYS[2], '~', string.rep('~', 4096)) end
call('ZADD', KEYS[4], ARGV[3], ARGV[2])
local claimed = {}
for i = 1, #ids do claimed[2 * i - 1] = ids[i]; claimed[2 * i] = '' end
call('HSET', KEYS[2], unpack(claimed))
local taken = table.concat(ids, ' ')
call('SET', KEYS[5], ARGV[4] .. ' ' .. taken, 'EX', 600)
return taken
