--[[ history: a task's event log lives in its own hash, field 'h': one line per event, oldest
first, '<id> <STATE> <ms>' for a state change and '<id> P <ms> <progress JSON>' for progress.
Keeping it in the hash (not a list key of its own) spares every transition a key lookup, an
RPUSH and an EXPIRE, and every finished task a key. It is prepended to the scripts that log
events (see scripts.rs). Capped at about 4 KB: the oldest lines go first.

history(h, line) returns h (nil before the first event) with line appended.
]]
local function history(h, line)
  if not h or h == '' then return line end
  h = h .. '\n' .. line
  if #h > 4096 then
    local cut = string.find(h, '\n', #h - 4096, true)
    if cut then h = string.sub(h, cut + 1) end
  end
  return h
end
