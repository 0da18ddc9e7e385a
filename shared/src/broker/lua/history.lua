--[[ history: a task's event log lives in its own hash, field 'h': one line per event, oldest
first, '<id> <STATE> <ms>' for a state change and '<id> P <ms> <progress JSON>' for progress.
The id is the task's version, field 'v'. Keeping the log in the hash (not a list key of its
own) spares every transition a key lookup, an RPUSH and an EXPIRE, and every finished task a
key. This file is prepended to the scripts that log events (see scripts.rs). The log is
capped at about 4 KB: the oldest lines go first.

increment(n)          the counter field n (text, nil = 0) plus one, as text: string.format('%d')
                      is cheap, while tostring() of a Lua number costs an snprintf
next_event(v, h, kind, at, detail)
                      for a task at version v with history h: the new version, and h with
                      '<new version> <kind> <at>[ <detail>]' appended (kind: a state, or P for
                      progress with its JSON as detail); the caller writes both ('v' and 'h')
]]
local function increment(n)
  return string.format('%d', (tonumber(n) or 0) + 1)
end

local function next_event(v, h, kind, at, detail)
  local id = string.format('%d', (tonumber(v) or 0) + 1) -- increment(v), without a call
  -- one concatenation each: every intermediate Lua string would be hashed and interned
  local line
  if detail then
    line = id .. ' ' .. kind .. ' ' .. at .. ' ' .. detail
  else
    line = id .. ' ' .. kind .. ' ' .. at
  end
  if not h or h == '' then return id, line end
  h = h .. '\n' .. line
  if #h > 4096 then
    local cut = string.find(h, '\n', #h - 4096, true)
    if cut then h = string.sub(h, cut + 1) end
  end
  return id, h
end
