--[[ fetch: take up to N pending tasks and start them for one worker, in one step: what
claim.lua then start.lua do in two calls, for a queue with neither a pause, priority lists nor
limits (the common case; a queue with any of them answers -3, and the worker claims and starts
in two calls). A task is leased to the worker, with its fencing token, in the same step that
takes it off the pending list, and the worker's lease on the queue is renewed (invariants 2
and 3).

The task hashes are not in KEYS: they are only known once taken. Every key here shares the
queue's hash tag, so on Redis Cluster they live in one slot; and the declared pause flag, bell
and limits hash are absent whenever this script runs past its first check, so while that slot
is being migrated Redis refuses the call before it runs (TRYAGAIN, or ASK and then TRYAGAIN:
not every declared key is on either node), and the script only ever runs on the node that
holds the whole slot (design.md, invariant 9). The pending list is trimmed last: a script cut
short would leave its tasks pending, to be started again, never lost.

KEYS[1..10]  as start_tasks.lua says
KEYS[11]     pending list of the queue
KEYS[12]     pause flag of the queue
KEYS[13]     leases sorted set of the queue (worker id -> lease expiry, ms)
KEYS[14]     this worker's last claim on this queue ('<token> <id> <id>...', as claim.lua)
KEYS[15]     priority bell of the queue
then         webhooks stream of the queue; archive stream, only when the archive is on
ARGV[1..5]   as start_tasks.lua says
ARGV[6]      the most tasks to take
ARGV[7]      lease expiry, ms
ARGV[8]      claim token (new for every call; the same when asking again after an error)
ARGV[9]      task hash prefix of the queue (the hash of task <suffix> is prefix .. suffix)

Returns  -3 when the queue is paused or has priority lists or limits (claim and start
         instead); the ids the lost reply of this token's call carried, in one string,
         space-separated, when asked again (start them with start.lua, as after a claim);
         '' when nothing is pending; otherwise start_tasks' answer (2 strings per task) with
         the ids taken, oldest first, space-separated, as one more string at the end
]]
local call = redis.call
local token = ARGV[8]
local last = call('GET', KEYS[14])
if last and string.sub(last, 1, #token + 1) == token .. ' ' then
  return string.sub(last, #token + 2)
end
if call('EXISTS', KEYS[12], KEYS[15], KEYS[5]) > 0 then return -3 end
-- The oldest are at the right of the list: read them first, take them off last.
local newest_first = call('LRANGE', KEYS[11], -tonumber(ARGV[6]), -1)
local n = #newest_first
if n == 0 then return '' end
local ids, tasks, prefix = {}, {}, ARGV[9]
for i = 1, n do
  local suffix = newest_first[n + 1 - i]
  ids[i] = suffix
  tasks[i] = prefix .. suffix
end
-- A hash of up to 128 short fields is a listpack, scanned for every field: the in-flight hash
-- starts with a field too long for that ('~', no id), as in claim.lua.
if call('EXISTS', KEYS[1]) == 0 then call('HSET', KEYS[1], '~', string.rep('~', 4096)) end
local out = start_tasks(n, ids, 0, tasks, 0, nil, nil, archive_stream(15, 0), webhooks_stream(15, 0))
call('LTRIM', KEYS[11], 0, -n - 1)
call('ZADD', KEYS[13], ARGV[7], ARGV[1])
local taken = table.concat(ids, ' ')
call('SET', KEYS[14], token .. ' ' .. taken, 'EX', 600)
out[2 * n + 1] = taken
return out
