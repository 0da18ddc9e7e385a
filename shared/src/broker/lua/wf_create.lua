--[[ wf_create: store a workflow's plan and its counters, once.

KEYS[1]   the workflow's hash
ARGV[1]   plan JSON
ARGV[2]   number of members (tasks but the error callback)
ARGV[3]   now, ms
ARGV[4]   the error callback's node, or -1
ARGV[5..] pairs: field, value (left:<node> counters and succ:<node> successor lists)

Returns 1 (stored) or 0 (a workflow with this id exists)
]]
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'plan', ARGV[1], 's', 'RUNNING', 'n', ARGV[2], 'done', 0, 'c', ARGV[3], 'oe', ARGV[4])
for i = 5, #ARGV, 2 do

  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
