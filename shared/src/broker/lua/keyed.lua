--[[ keyed: the limits each key of a queue has on its own (limits.rs, "key limits"): a rate
and a concurrency cap that every key (a task's 'limit_key' option, else its task name) gets
for itself, so one customer's burst cannot hold the others up. Prepended to start.lua, which
admits each task it would run, or holds it back in Redis:

  - a key whose cap is full parks the task in the queue's parked sorted set (member
    '<key>\n<suffix>', all scored 0, so one key's tasks are a lexical range, oldest first);
    it stays PENDING, and the run that frees the key's slot puts it back at the front of the
    pending list (slots.lua, release_key_slots);
  - a key without a token reserves the next one (the key's GCRA time, in the queue's key-rate
    sorted set, moves on by one interval) and the task waits for it in the scheduled set,
    due at that token's time, marked 'kr' (its token is taken: it runs then without another).

key_limits(limits)                           the queue's key limits ({interval, burst, cap},
                                             or nil without them)
key_of(spec)                                 a task's key, from its packed spec (record.rs):
                                             its 'limit_key' option, else its name
admit(kl, keys, key, suffix, reserved, now)  'run', 'parked' or 'deferred' (and the due ms);
                                             keys = {keyed hash, key-rate set, parked set},
                                             reserved = the task already holds a key token
                                             (field 'kr'), now in ms
]]
local function key_limits(limits)
  local k = redis.call('HMGET', limits, 'kinterval', 'kburst', 'kcap')
  if not k[1] and not k[3] then return nil end
  return {interval = tonumber(k[1]), burst = tonumber(k[2]) or 1, cap = tonumber(k[3])}
end

local function key_of(spec)
  local name, options = string.match(spec, '^([^\n]*)\n[^\n]*\n[^\n]*\n([^\n]*)\n')
  if options and string.find(options, '"limit_key"', 1, true) then
    local ok, decoded = pcall(cjson.decode, options)
    if ok and type(decoded) == 'table' and type(decoded.limit_key) == 'string' then return decoded.limit_key end
  end
  return name or ''
end

local function admit(kl, keys, key, suffix, reserved, now)
  if kl.cap then
    local running = tonumber(redis.call('HGET', keys[1], 'r:' .. key)) or 0
    if running >= kl.cap and redis.call('HEXISTS', keys[1], 's:' .. suffix) == 0 then
      redis.call('ZADD', keys[3], 0, key .. '\n' .. suffix)
      return 'parked'
    end
  end
  if kl.interval and not reserved then
    local now_us = now * 1000
    local tolerance = (kl.burst - 1) * kl.interval
    local tat = math.max(tonumber(redis.call('ZSCORE', keys[2], key)) or 0, now_us)
    redis.call('ZADD', keys[2], string.format('%.0f', tat + kl.interval), key)
    if now_us < tat - tolerance then
      return 'deferred', string.format('%.0f', math.ceil((tat - tolerance) / 1000))
    end
  end
  if kl.cap and redis.call('HSETNX', keys[1], 's:' .. suffix, key) == 1 then
    redis.call('HINCRBY', keys[1], 'r:' .. key, 1)
  end
  return 'run'
end
