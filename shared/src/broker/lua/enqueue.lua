--[[ enqueue: store new tasks and put each in its queue (pending list) or, when it has a
future due time, in the scheduled set; add each to the queue's listing log (listing.rs).
All or nothing: on any refusal nothing is written.

KEYS[1]   pending list of the queue
KEYS[2]   scheduled sorted set of the queue
KEYS[3]   idempotency key (read only when ARGV[3] > 0)
KEYS[4]   listing log of the queue (list, newest first: an entry is the id suffix when the
          spec leaves out the creation ms, which the id then holds, else
          '<creation ms>-<id suffix>')
KEYS[5]   stats hash of the queue (counts 'enqueued' once per call, and 'listing_dropped':
          the listing entries the cap removed, which keeps the log's sequence numbers)
KEYS[6..] one task hash per task, in the order of the task groups in ARGV
then, only when a task of the batch has a priority above 0:
  the queue's priority marker (set for good), its priority bell (rung), and its pending lists
  of priority 9 down to 1 (keys.rs)
ARGV[1]   now, ms since the epoch
ARGV[2]   maximum pending length of the queue; 0 = unbounded
ARGV[3]   idempotency TTL in seconds; 0 = no idempotency key
ARGV[4]   idempotency value: '<task id> <request fingerprint>'
ARGV[5]   most entries the listing log keeps (the oldest go first)
ARGV[6..] per task, 3 values: id suffix, spec (name, creation, traceparent, options and
          args, packed: record.rs), and the extras: '' for a task to run now that never
          expires and is no workflow member (the common case, which then costs no more
          arguments), else '<due ms> <expires ms> <workflow link>' (0 = now, 0 = never,
          nothing after the second space = none), with 'p<priority> ' in front for a
          priority above 0 (the task then goes to that priority's list)

Returns
  {1, ''}             stored
  {0, value}          the idempotency key was already claimed; value is what ARGV[4] was then
  {-1, depth}         the queue is full (backpressure); depth as text
  {-2, suffix}        a task with this id exists already (deterministic ids)
]]
local call, tonumber, byte, find = redis.call, tonumber, string.byte, string.find -- locals: a global is a table lookup at each use
local now = tonumber(ARGV[1])
-- Timestamps go back to Redis as the caller's text: formatting a Lua number costs an snprintf.
local at = ARGV[1]
local max_pending = tonumber(ARGV[2])
local idem_ttl = tonumber(ARGV[3])
local listing_max = tonumber(ARGV[5])
local FIRST, STRIDE = 6, 3
local count = (#ARGV - FIRST + 1) / STRIDE
-- The priority lists, when passed: level L's list is KEYS[levels + 9 - L].
local prioritized = #KEYS > 5 + count
local levels = 8 + count
-- A task's extras: its due time (a number, 0 = now, and as the caller's text), its expiry
-- (text, nil = never), its workflow link (nil = none) and its priority (nil = 0).
local function extras(i)
  local e = ARGV[FIRST + i * STRIDE + 2]
  if e == '' then return 0 end
  local level, rest = string.match(e, '^p(%d) (.*)$')
  if level then e = rest end
  local due, expires, link = string.match(e, '^(%d+) (%d+) ?(.*)$')
  return tonumber(due), due, expires ~= '0' and expires or nil, link ~= '' and link or nil, level
end

if idem_ttl > 0 then
  local first = call('GET', KEYS[3])
  if first then return {0, first} end
end

-- One EXISTS for the whole batch (a call costs more than the lookups); which id is taken is
-- only looked for when one is.
if call('EXISTS', unpack(KEYS, 6, 5 + count)) > 0 then
  for i = 0, count - 1 do
    if call('EXISTS', KEYS[6 + i]) == 1 then return {-2, ARGV[FIRST + i * STRIDE]} end
  end
end
if max_pending > 0 then
  local immediate = 0
  for i = 0, count - 1 do
    if extras(i) <= now then immediate = immediate + 1 end
  end
  if immediate > 0 then
    local depth = call('LLEN', KEYS[1])
    if prioritized then
      for l = levels, levels + 8 do depth = depth + call('LLEN', KEYS[l]) end
    end
    if depth + immediate > max_pending then return {-1, tostring(depth)} end
  end
end

-- Tables are filled by index: '#t' is a search each time.
local ready, n_ready = {}, 0
local listed = {}
for i = 0, count - 1 do
  local a = FIRST + i * STRIDE
  local suffix, spec = ARGV[a], ARGV[a + 1]
  local due, due_text, expires, link, level = extras(i)
  local key = KEYS[6 + i]
  -- the state first: every script reads it, and a hash finds a field by scanning from the start
  if level then
    -- field 'p': promote.lua and requeue.lua put it back in its priority's list
    call('HSET', key, 's', due <= now and 'PENDING' or 'SCHEDULED', 't', spec, 'p', level)
    if due <= now then
      call('LPUSH', KEYS[levels + 9 - tonumber(level)], suffix)
    else
      call('HSET', key, 'eta', due_text)
      call('ZADD', KEYS[2], due_text, suffix)
    end
  elseif due <= now then
    call('HSET', key, 's', 'PENDING', 't', spec)
    n_ready = n_ready + 1
    ready[n_ready] = suffix
  else
    call('HSET', key, 's', 'SCHEDULED', 't', spec, 'eta', due_text)
    call('ZADD', KEYS[2], due_text, suffix)
  end
  if expires then call('HSET', key, 'x', expires) end
  if link then call('HSET', key, 'wf', link) end
  -- The spec's creation ms is empty (a line break, byte 10, right after the name's) when the
  -- id holds it, a UUID v7 made in this very ms (fields.rs): then the entry leaves it out too.
  listed[i + 1] = byte(spec, find(spec, '\n', 1, true) + 1) == 10 and suffix or at .. '-' .. suffix
end
if n_ready > 0 then call('LPUSH', KEYS[1], unpack(ready)) end
if prioritized then
  call('SET', KEYS[6 + count], '1')
  if call('EXISTS', KEYS[7 + count]) == 0 then call('LPUSH', KEYS[7 + count], '1') end
end
local over = call('LPUSH', KEYS[4], unpack(listed)) - listing_max
if over > 0 then
  call('LTRIM', KEYS[4], 0, listing_max - 1)
  call('HINCRBY', KEYS[5], 'listing_dropped', over)
end
if idem_ttl > 0 then call('SET', KEYS[3], ARGV[4], 'EX', idem_ttl) end
call('HINCRBY', KEYS[5], 'enqueued', count)
return {1, ''}
