--[[ wf_revoke: stop a running workflow from starting any more members.

KEYS[1]  the workflow's hash
ARGV[1]  TTL of a finished workflow, seconds

Returns the state it had: RUNNING (now REVOKED), another state (unchanged), or MISSING
]]
local s = redis.call('HGET', KEYS[1], 's')
if not s then return 'MISSING' end
if s == 'RUNNING' then
  redis.call('HSET', KEYS[1], 's', 'REVOKED')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return s
