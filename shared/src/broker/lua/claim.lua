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
KEYS[7]  limits hash of the queue (limits.rs): present only while the queue has a rate limit
         or a concurrency cap
KEYS[8..16] only from a worker that knows the queue has priorities: its pending lists of
         priority 9 down to 1, taken before the pending list (level 0), oldest first in each
ARGV[1]  the most ids to take
ARGV[2]  worker id
ARGV[3]  lease expiry, ms
ARGV[4]  claim token (new for every claim; the same when asking again after an error)
ARGV[5]  now, ms

Limits. A rate limit is a GCRA (a token bucket kept as one time, 'tat', in microseconds):
each task handed out moves 'tat' on by the emission interval, and a claim may take as many
tasks as fit between 'tat' and now plus the burst tolerance. A concurrency cap compares the
ids leased to all workers ('running', which this script adds to and the scripts that end
leases take from: slots.lua) with the cap. A claim takes at most what both allow; held back
by one, it takes nothing and says which, so the worker waits in Redis (a timed sleep for the
next token, or a block on the queue's freed-slots list), never in a polling loop.

Returns  -1 when the queue is paused; -2 when the bell rings and KEYS holds no priority lists
         (ask again with them); {'rate', ms until the next token} or {'concurrency'} when a
         limit holds every task back; otherwise the ids taken, oldest first, in one string,
         space-separated ('' for none): one value to parse instead of one per id
]]
local call, tonumber = redis.call, tonumber -- locals: a global is a table lookup at each use
local last = call('GET', KEYS[5])
-- Asked again with the same token (the reply was lost): the same ids. A new claim, the
-- common case, just compares the token.
if last and string.sub(last, 1, #ARGV[4] + 1) == ARGV[4] .. ' ' then
  return string.sub(last, #ARGV[4] + 2)
end
-- One lookup for the pause flag, the bell and the limits: a queue never given priorities or
-- limits costs nothing more than the pause check it always had.
local ids
local want = tonumber(ARGV[1])
local limit -- the limits hash's fields, when the queue has one
if call('EXISTS', KEYS[3], KEYS[6], KEYS[7]) > 0 then
  if call('EXISTS', KEYS[3]) == 1 then return -1 end
  local now = tonumber(ARGV[5]) * 1000
  limit = call('HMGET', KEYS[7], 'interval', 'burst', 'tat', 'cap', 'running')
  local interval = tonumber(limit[1])
  if interval then
    local tolerance = (tonumber(limit[2]) or 1) * interval
    local tat = math.max(tonumber(limit[3]) or 0, now)
    local tokens = math.floor((now + tolerance - tat) / interval)
    if tokens < 1 then return {'rate', string.format('%.0f', math.ceil((tat + interval - tolerance - now) / 1000))} end
    if tokens < want then want = tokens end
    limit[3] = tat
  end
  local cap = tonumber(limit[4])
  if cap then
    local free = cap - (tonumber(limit[5]) or 0)
    if free < 1 then return {'concurrency'} end
    if free < want then want = free end
  end
  if call('EXISTS', KEYS[6]) == 1 then
    if #KEYS < 16 then return -2 end
    -- Highest priority first, then level 0; a list holds its ids oldest at the right.
    ids = {}
    for k = 8, 17 do
      local got = call('RPOP', k == 17 and KEYS[1] or KEYS[k], want - #ids)
      if got then
        for i = 1, #got do ids[#ids + 1] = got[i] end
        if #ids >= want then break end
      end
    end
    if call('EXISTS', unpack(KEYS, 8, 16)) == 0 then call('DEL', KEYS[6]) end
  else
    ids = call('RPOP', KEYS[1], want) or {}
  end
  if #ids == 0 then return '' end
  if limit[1] then
    call('HSET', KEYS[7], 'tat', string.format('%.0f', limit[3] + #ids * tonumber(limit[1])))
  end
  if limit[4] then call('HINCRBY', KEYS[7], 'running', #ids) end
else
  ids = call('RPOP', KEYS[1], want)
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
