--[[ limits_put: set or clear one queue's flow limits (limits.rs), and count the ids leased to
its workers when it gets a concurrency cap, in one step. From then on claim.lua adds to that
count and the scripts that end leases take from it (slots.lua), so it is exact: the count is
taken here from every worker's in-flight hash, and a worker that took a lease since the
caller read the leases makes this script refuse (-1), and the caller reads them again.

KEYS[1]   limits hash of the queue
KEYS[2]   leases sorted set of the queue (worker id -> lease expiry)
KEYS[3]   freed-slots list of the queue (a cap with free slots wakes the workers waiting)
KEYS[4..] the in-flight hash of each worker in ARGV[10..], in that order
ARGV[1]   emission interval of the rate, microseconds ('' for no rate limit)
ARGV[2]   burst: tasks that may go out at once after a quiet spell ('' for 1)
ARGV[3]   concurrency cap ('' for none)
ARGV[4]   the limits as declared for the whole queue, JSON (shown to operators: a sharded
          queue's shards each get a share of them)
ARGV[5]   who sets it: 'settings' (a process at start) or 'api' (an operator); settings never
          replace what an operator set, so a restart does not undo a change made at 3 a.m.
ARGV[6]   '1' to clear every limit instead (the arguments before are then ignored)
ARGV[7]   each key's rate: emission interval, microseconds ('' for none; keyed.lua)
ARGV[8]   each key's burst ('' for 1)
ARGV[9]   each key's concurrency cap ('' for none)
ARGV[10..] the workers holding leases on the queue, as the caller read them

Returns  1 set or cleared; 0 left alone (settings, over an operator's limits); -1 the leases
         changed since the caller read them (read them again)
]]
local call = redis.call
if ARGV[6] == '1' then
  call('DEL', KEYS[1])
  return 1
end
if ARGV[5] == 'settings' and call('HGET', KEYS[1], 'source') == 'api' then return 0 end
local holders = call('ZRANGE', KEYS[2], 0, -1)
if #holders ~= #ARGV - 9 then return -1 end
local given = {}
for i = 10, #ARGV do given[ARGV[i]] = true end
for _, w in ipairs(holders) do
  if not given[w] then return -1 end
end
if ARGV[1] == '' and ARGV[3] == '' and ARGV[7] == '' and ARGV[9] == '' then
  call('DEL', KEYS[1])
  return 1
end
local old = call('HMGET', KEYS[1], 'interval', 'tat')
local fields = {'source', ARGV[5]}
local drop = {}
local function put(name, value)
  if value == '' then drop[#drop + 1] = name else fields[#fields + 1] = name; fields[#fields + 1] = value end
end
put('interval', ARGV[1])
put('burst', ARGV[1] ~= '' and ARGV[2] or '')
put('cap', ARGV[3])
put('kinterval', ARGV[7])
put('kburst', ARGV[7] ~= '' and ARGV[8] or '')
put('kcap', ARGV[9])
put('declared', ARGV[4])
-- A new rate starts with a full bucket; the same rate keeps its place.
if ARGV[1] == '' or old[1] ~= ARGV[1] then drop[#drop + 1] = 'tat' end
local running = 0
if ARGV[3] ~= '' then
  for k = 4, #KEYS do
    local held = call('HLEN', KEYS[k])
    if held > 1 then running = running + held - 1 end -- all but the '~' filler (claim.lua)
  end
  fields[#fields + 1] = 'running'; fields[#fields + 1] = running
else
  drop[#drop + 1] = 'running'
end
if #drop > 0 then call('HDEL', KEYS[1], unpack(drop)) end
call('HSET', KEYS[1], unpack(fields))
-- A cap that leaves slots free (a new one, or a raised one) wakes that many waiting workers
-- (at most 256: a worker waits once per queue, and one that wakes takes every free slot).
if ARGV[3] ~= '' then
  local cap = tonumber(ARGV[3])
  local free = math.min(cap - running, 256)
  if free > 0 then
    local wake = {}
    for i = 1, free do wake[i] = '1' end
    call('LPUSH', KEYS[3], unpack(wake))
    call('LTRIM', KEYS[3], 0, cap - 1)
  end
end
return 1
