--[[ wf_advance: record that a member of a workflow ended, and say which members may start
now. Idempotent: recording the same member again changes nothing and returns the same
members, so a caller that crashed before enqueuing them can simply run it again (their task
ids are deterministic, so enqueuing twice stores them once). Counters change atomically here;
nothing polls.

KEYS[1]   the workflow's hash
ARGV[1]   member node
ARGV[2]   its final state: SUCCESS, FAILURE or REVOKED
ARGV[3]   its result (SUCCESS) or error (otherwise), JSON
ARGV[4]   TTL of a finished workflow, seconds
ARGV[5]   the member's task id

Returns {workflow state, node, node, ...}: the nodes to enqueue now
]]
local wf = KEYS[1]
local node, state, payload = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', wf) == 0 then return {'MISSING'} end
local on_error = redis.call('HGET', wf, 'oe')
local ttl = tonumber(ARGV[4])
local ready = {}
local function successors()
  local list = redis.call('HGET', wf, 'succ:' .. node)
  if not list then return {} end
  local out = {}
  for m in string.gmatch(list, '[^,]+') do out[#out + 1] = m end
  return out
end

local first_time = redis.call('HSETNX', wf, 'st:' .. node, state) == 1
if node == on_error then
  return {redis.call('HGET', wf, 's')}
end
if state == 'SUCCESS' then
  if first_time then
    redis.call('HSET', wf, 'r:' .. node, payload)
    local done = redis.call('HINCRBY', wf, 'done', 1)
    for _, m in ipairs(successors()) do
      redis.call('HINCRBY', wf, 'left:' .. m, -1)
    end
    if done == tonumber(redis.call('HGET', wf, 'n')) and redis.call('HGET', wf, 's') == 'RUNNING' then
      redis.call('HSET', wf, 's', 'SUCCESS')
      redis.call('EXPIRE', wf, ttl)
    end
  end
  for _, m in ipairs(successors()) do
    if tonumber(redis.call('HGET', wf, 'left:' .. m)) == 0 then ready[#ready + 1] = m end
  end
else
  if first_time and redis.call('HGET', wf, 's') == 'RUNNING' then
    redis.call('HSET', wf, 's', 'FAILURE', 'failed', node, 'failed_id', ARGV[5], 'err', payload)

    redis.call('EXPIRE', wf, ttl)
  end
  if on_error ~= '-1' and redis.call('HGET', wf, 'failed') == node then ready[#ready + 1] = on_error end
end
local s = redis.call('HGET', wf, 's')
if s == 'REVOKED' then ready = {} end
local out = {s}
for _, m in ipairs(ready) do out[#out + 1] = m end
return out
