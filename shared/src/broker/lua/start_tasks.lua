--[[ start_tasks: mark a batch of leased tasks STARTED by this worker, or settle the ones that
must not run (revoked while queued, expired, gone, or poison: a record without its spec, field
't', which goes to the dead letters with the reason). Prepended to start.lua (tasks claimed
before, by claim.lua) and fetch.lua (tasks it takes itself), which share this layout:

KEYS[1]   in-flight hash of this worker on this queue (id suffix -> fencing token)
KEYS[2]   dead-letter sorted set of the queue
KEYS[3]   workflow outbox list of the queue (a workflow member settled here goes there)
KEYS[4]   stats hash of the queue (counts 'revoked' and 'failed' for tasks settled here)
KEYS[5]   limits hash of the queue (the slots of tasks settled here are given back: slots.lua)
KEYS[6]   freed-slots list of the queue
KEYS[7]   keyed hash of the queue (the running tasks of each key under a key cap: keyed.lua)
KEYS[8]   key-rate sorted set of the queue (each key's GCRA time, µs)
KEYS[9]   parked sorted set of the queue (tasks waiting for their key's slot)
KEYS[10]  scheduled sorted set of the queue (a task deferred to its key's next token waits there)
ARGV[1]   worker id
ARGV[2]   now, ms
ARGV[3]   result TTL, seconds (for tasks settled here)
ARGV[4]   events channel (one message per call: the changed task ids, space-separated)
ARGV[5]   queue name (task id = queue '-' suffix)

Each start is a new delivery; its number fences every later write of this run (progress,
finish): it becomes the task's token in the worker's in-flight hash, '<flags><delivery>':
flag 'c' when its options name a callback URL, then 'w' for a workflow member (so 'cw7', 'w7',
'c7' or just '7'), so finish.lua needs to read nothing of the task to fence it, to find its
workflow or to know it has a webhook to send. Every change is logged in the task's history
(history.lua); the start itself only in the run field 'w'.

start_tasks(n, suffixes, s_at, tasks, t_at, leased, kl, stream, hooks)
  the n tasks whose id suffixes are suffixes[s_at + 1 .. s_at + n] and whose hashes are
  tasks[t_at + 1 .. t_at + n] (offsets, so start.lua passes ARGV and KEYS as they are);
  leased: this worker's tokens of them (HMGET of the in-flight hash), or nil when the caller
  has just taken them (none may have been lost since); kl: the queue's key limits
  (keyed.lua), nil without them; stream, hooks: the archive stream (false when off) and the
  webhooks stream. Returns a flat array of strings, 2 per task (few values: each costs the
  client a parse):
  '<delivery>[ <retries> <eta>]', spec -- run it (spec: field 't', packed as record.rs says;
                                          eta: '' for none; with the creation time in the
                                          spec, it gives the wait-time metric)
  'skip', reason                        -- do not run it (gone | revoked | expired | poison), or
                                           not now (parked | deferred: held back by a key's
                                           limit, still PENDING or SCHEDULED)
]]
local function start_tasks(n, suffixes, s_at, tasks, t_at, leased, kl, stream, hooks)
  local call, tonumber = redis.call, tonumber -- locals: a global is a table lookup at each use
  local now = tonumber(ARGV[2])
  -- Timestamps and counters go back to Redis as strings: formatting a Lua number (a double)
  -- costs an snprintf each time, which profiling showed as a tenth of Redis' work.
  local at = ARGV[2]
  local ttl = ARGV[3]
  -- Tables are filled by index: '#t' is a search each time.
  local out = {}
  local function skip(o, reason)
    out[o + 1] = 'skip'; out[o + 2] = reason
  end
  -- A record stored before the spec field existed keeps its parts in fields of their own: pack
  -- them the same way (record.rs), so an upgrade loses no pending task. Nil if it has no name
  -- or no arguments.
  local function legacy_spec(key)
    local o = call('HMGET', key, 'n', 'c', 'tp', 'o', 'a')
    if not o[1] or not o[5] then return nil end
    return o[1] .. '\n' .. (o[2] or '') .. '\n' .. (o[3] or '') .. '\n' .. (o[4] or '') .. '\n' .. o[5]
  end
  -- The run field of every task started here: the same for the whole batch, built once.
  local run_field = '*' .. at .. ' ' .. ARGV[1]
  local key_keys = {KEYS[7], KEYS[8], KEYS[9]}
  local released = 0 -- ids settled here, out of the in-flight hash
  local changed, n_changed = {}, 0
  local function settle(key, f, w, suffix, state, error)
    log_event(key, call('HGET', key, 'h'), w, state, at, nil, 's', state, 'e', error)
    call('EXPIRE', key, ttl)
    if stream then archive(stream, key, ARGV[5] .. '-' .. suffix) end
    webhook(hooks, key, ARGV[5] .. '-' .. suffix, state, f[2])
    call('HDEL', KEYS[1], suffix)
    released = released + 1
    n_changed = n_changed + 1
    changed[n_changed] = suffix
    if f[7] then call('LPUSH', KEYS[3], suffix) end
    call('HINCRBY', KEYS[4], state == 'REVOKED' and 'revoked' or 'failed', 1)
  end
  -- Takes an id out of this worker's hash without running it (its slots are given back at the
  -- end of the batch) and says why.
  local function let_go(o, suffix, reason)
    call('HDEL', KEYS[1], suffix)
    released = released + 1
    skip(o, reason)
  end
  -- The new tokens, written in one step at the end: suffix, token, suffix, token...
  local tokens, n_tokens = {}, 0
  for i = 1, n do
    local suffix = suffixes[s_at + i]
    local key = tasks[t_at + i]
    local o = (i - 1) * 2 -- this task's place in out
    -- Not the log ('h'): only the rare paths read it (a settle, a deferral, a start asked
    -- again while the last one's event is still out of the log), and a first start would
    -- build a Lua string of it for nothing. A plain task never started holds two fields, its
    -- state and spec (HLEN is O(1)): those alone are read, and every other field it could
    -- hold is absent. Any other record (or one of two fields without a spec) is read in full.
    local f
    if call('HLEN', key) == 2 then f = call('HMGET', key, 's', 't') end
    if not (f and f[2]) then f = call('HMGET', key, 's', 't', 'rt', 'x', 'eta', 'd', 'wf', 'kr', 'w') end
    -- Only a task delivered before has a run field, maybe with its start not logged yet.
    local w = f[9]
    local state, spec, expires = f[1], f[2], tonumber(f[4])
    if state and not spec then spec = legacy_spec(key) end
    if leased and not leased[i] then
      skip(o, 'gone')
    elseif not state then
      let_go(o, suffix, 'gone')
    elseif state == 'REVOKED' then
      let_go(o, suffix, 'revoked')
    elseif not spec then
      settle(key, f, w, suffix, 'FAILURE', '{"kind":"Poison","message":"the stored task has no name or no arguments","retryable":false}')
      call('ZADD', KEYS[2], at, suffix)
      skip(o, 'poison')
    elseif expires and expires <= now then
      settle(key, f, w, suffix, 'REVOKED', '{"kind":"Expired","message":"expired before it started","retryable":false}')
      skip(o, 'expired')
    else
      -- The queue's key limits may hold it back (keyed.lua): parked for its key's slot, or
      -- deferred to its key's next token. Either way it leaves this worker's hash.
      local verdict, due = 'run', nil
      if kl then verdict, due = admit(kl, key_keys, key_of(spec), suffix, f[8], now) end
      if verdict == 'parked' then
        let_go(o, suffix, 'parked')
      elseif verdict == 'deferred' then
        log_event(key, call('HGET', key, 'h'), w, 'SCHEDULED', at, nil, 's', 'SCHEDULED', 'eta', due, 'kr', '1')
        call('ZADD', KEYS[10], due, suffix)
        n_changed = n_changed + 1
        changed[n_changed] = suffix
        let_go(o, suffix, 'deferred')
      else
        if f[8] then call('HDEL', key, 'kr') end
        -- A first start writes no deliveries field 'd' (history.lua: deliveries), and builds
        -- no string for its count.
        local delivery = (f[6] or w) and increment(deliveries(f[6], w)) or '1'
        -- The STARTED event stays out of the log, marked in the run field (history.lua); a
        -- start asked again while the first one's event is still out folds that one in first
        -- (the only start that reads the log).
        local h, run
        if start_out_of_log(w) then h, run = folded(call('HGET', key, 'h'), w) end
        if run then
          call('HSET', key, 's', 'STARTED', 'w', run_field, 'd', delivery, 'h', h)
        elseif delivery == '1' then
          call('HSET', key, 's', 'STARTED', 'w', run_field)
        else
          call('HSET', key, 's', 'STARTED', 'w', run_field, 'd', delivery)
        end
        tokens[n_tokens + 1] = suffix
        -- Flags only when there are any (most tasks: the bare delivery, no string built).
        local token = f[7] and 'w' .. delivery or delivery
        if has_callback(spec) then token = 'c' .. token end
        tokens[n_tokens + 2] = token
        n_tokens = n_tokens + 2
        n_changed = n_changed + 1
        changed[n_changed] = suffix
        -- a first delivery that never failed and had no due time: just its number (no new
        -- string)
        if f[3] or f[5] then
          out[o + 1] = delivery .. ' ' .. (f[3] or '0') .. ' ' .. (f[5] or '')
        else
          out[o + 1] = delivery
        end
        out[o + 2] = spec
      end
    end
  end
  if n_tokens > 0 then call('HSET', KEYS[1], unpack(tokens)) end
  release_slots(KEYS[5], KEYS[6], released)
  -- Key tokens that are not in the future are a key at rest: their entries go.
  if kl and kl.interval then call('ZREMRANGEBYSCORE', KEYS[8], '-inf', string.format('%.0f', now * 1000)) end
  -- The task ids, '<queue>-<suffix>' each, joined in one step (no string per task).
  local prefix = ARGV[5] .. '-'
  if n_changed > 0 then call('PUBLISH', ARGV[4], prefix .. table.concat(changed, ' ' .. prefix)) end
  hand_over(stream)
  return out
end
