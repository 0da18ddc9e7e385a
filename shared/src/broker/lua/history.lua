--[[ history: a task's event log lives in its own hash, field 'h': one line per event, newest
first, '<id> <STATE> <ms>' for a state change and '<id> P <ms> <progress JSON>' for progress.
The ids count the task's events (1, 2, 3...): the id of the first line is the task's version,
so no other field has to be read or written to know it. Keeping the log in the hash (not a
list key of its own) spares every transition a key lookup, an RPUSH and an EXPIRE, and every
finished task a key. This file is prepended to the scripts that log events (see scripts.rs).
The log is capped at about 4 KB: the oldest lines go first.
Two events are kept out of 'h', each in a field the transition writes anyway, to spare the
hot path (start.lua, then finish.lua) a read and a rewrite of the log:
- a start: start.lua writes the run field 'w' as '*<ms> <worker>'; the '*' says its STARTED
  event is not in 'h' yet;
- a SUCCESS or FAILURE ending: finish.lua writes only its time, field 'z' (the kind is the
  state).
They come after the log's newest event, in that order, with the next ids. Readers fold them
in (wait.rs). They exist only while a task is STARTED, SUCCESS or FAILURE, since every
transition out of those states folds them first: a script that appends to the log of such a
task calls folded() and writes back what it returns.

start_out_of_log(w)   whether the run field w marks a start not in the log yet ('*')
folded(h, w, state, z)
                      history h with the events kept outside it folded in (w: the run field,
                      z: the ending's time, nil for none), and the run field to write back
                      without its mark (nil: unchanged)
increment(n)          the counter field n (text, nil = 0) plus one, as text: string.format('%d')
                      is cheap, while tostring() of a Lua number costs an snprintf
deliveries(d, w)      how many times the task was started, as text, from its fields 'd' and
                      'w': a first start writes the run field alone ('d' comes with the
                      second), so a record with 'w' and no 'd' was started once
count_kept(d, w)      the fields to write with a change that deletes the run field, so the
                      count it stood for stays: 'd', '1' for a record started once, else none
                      (as the last arguments of an HSET)
next_event(h, kind, at, detail)
                      history h with '<next id> <kind> <at>[ <detail>]' put in front (kind: a
                      state, or P for progress with its JSON as detail); the caller writes it
                      back to field 'h'
log_event(key, h, w, kind, at, detail, field, value, ...)
                      for a task that may be STARTED: appends the event to its log h after
                      the start kept out of it (w: its run field, as read with h), and writes
                      the fields given with the new 'h' (and 'w' unmarked, if it was marked) in
                      one HSET
]]
local format, match = string.format, string.match -- locals: cheaper than table lookups
local function increment(n)
  return format('%d', (tonumber(n) or 0) + 1)
end

local function deliveries(d, w)
  return d or (w and '1') or '0'
end

local function count_kept(d, w)
  if w and not d then return 'd', '1' end
end

local function next_event(h, kind, at, detail)
  local id = format('%d', (h and tonumber(match(h, '^%d+')) or 0) + 1)
  -- one concatenation each: every intermediate Lua string would be hashed and interned
  if not h or h == '' then
    if detail then return id .. ' ' .. kind .. ' ' .. at .. ' ' .. detail end
    return id .. ' ' .. kind .. ' ' .. at
  end
  if detail then
    h = id .. ' ' .. kind .. ' ' .. at .. ' ' .. detail .. '\n' .. h
  else
    h = id .. ' ' .. kind .. ' ' .. at .. '\n' .. h
  end
  -- over the cap: keep the whole lines that fit in 4096 bytes (the newest, always)
  if #h > 4096 then h = match(string.sub(h, 1, 4097), '^(.*)\n') or match(h, '^[^\n]*') end
  return h
end

local function start_out_of_log(w)
  return w and string.byte(w, 1) == 42 -- '*'
end

local function folded(h, w, state, z)
  local run
  if start_out_of_log(w) then
    run = string.sub(w, 2)
    h = next_event(h, 'STARTED', match(run, '^%d+'))
  end
  if z then h = next_event(h, state, z) end
  return h, run
end

local function log_event(key, h, w, kind, at, detail, ...)
  local log, run = folded(h, w)
  local fields = {...}
  local n = #fields
  fields[n + 1] = 'h'; fields[n + 2] = next_event(log, kind, at, detail)
  if run then fields[n + 3] = 'w'; fields[n + 4] = run end
  redis.call('HSET', key, unpack(fields))
end
