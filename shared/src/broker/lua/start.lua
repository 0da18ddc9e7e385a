--[[ start: start the tasks claim.lua leased to this worker (start_tasks.lua, prepended, says
what a start does and answers).

KEYS[1..10]  as start_tasks.lua says
KEYS[11..]   task hashes, in the order of the ids in ARGV
then         webhooks stream of the queue; archive stream of the queue, only when the archive
             is on (archive.lua)
ARGV[1..5]   as start_tasks.lua says
ARGV[6..]    id suffixes

Returns start_tasks' answer: 2 strings per task.
]]
local n = #ARGV - 5
-- One read of the tokens for the whole batch (a redis.call costs more than the command).
local leased = redis.call('HMGET', KEYS[1], unpack(ARGV, 6))
-- The queue's key limits (one HMGET of the limits hash a batch; nil without them).
return start_tasks(n, ARGV, 5, KEYS, 10, leased, key_limits(KEYS[5]), archive_stream(10, n), webhooks_stream(10, n))
