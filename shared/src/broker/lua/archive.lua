--[[ archive: hand a task that ended over to the PostgreSQL archive and, when it named a
callback URL, to its completion webhook, in the same step that records its ending, so that
nothing is lost between Redis and the archiver or the webhook deliverer (either may be down,
slow or killed: it catches up from its stream). Prepended, after history.lua, to every script
that makes a task terminal (see scripts.rs).

The archive's hand-over is one entry on the queue's archive stream (keys.rs, Keys::archive)
per script call (or per HAND_OVER_MAX tasks of a call that ends more), holding each task the
call ended: its id ('_i') and its record as it is after the ending, as Redis' DUMP of its
hash ('_d'), one pair after the other ('_i', id, '_d', dump, '_i', id, '_d', dump...). The
archiver builds the full rows from the entry alone (archive/src/dump.rs decodes the dumps),
even if the records have expired by then, and a record's own lifetime (the result TTL) is
unchanged. A DUMP copies the record's encoding whole; reading each field into Lua and
writing it onto the stream (the first builds, whose entries the archiver still reads) cost
Redis a third more, and an entry per task (the builds before this one, '_id' and '_d', still
read too) a quarter more than one per call (docs/archive.md).

The webhook's hand-over is one entry on the queue's webhooks stream (Keys::webhooks): the task
id and the final state; the workers' deliverers read the rest from the record (webhooks.rs in
celeriac-worker). Only tasks whose options name a `callback_url` get one.

Keys after the script's fixed keys and task hashes (and priority lists, counted as tasks): the
webhooks stream, always; then the archive stream, only when the archive is on (when it is off
nothing of the archive runs but a comparison per ended task and one hand_over() call that
finds nothing to write).

archive_stream(fixed, tasks)  the archive stream, or false when the archive is off (fixed: the
                              script's fixed keys before the task hashes; tasks: how many)
webhooks_stream(fixed, tasks) the webhooks stream
archive(stream, key, id)      adds the task (its id and its hash's DUMP) to this call's
                              hand-over, written at once when it holds HAND_OVER_MAX tasks;
                              callers call it only when there is a stream ('if stream then'),
                              so with the archive off not even the task id is built
hand_over(stream)             appends the rest of this call's hand-over to the stream, if it
                              holds any task: every script that calls archive() calls it once,
                              before it returns
hand_webhook(stream, id, state)
                              appends an ending to the webhooks stream (the entry the
                              deliverers read: the task id and its final state)
has_callback(spec)            whether a packed spec (field 't', record.rs) names a callback
                              URL in its options: its fourth line
webhook(stream, key, id, state, spec)
                              appends the ending to the webhooks stream when the task named a
                              callback URL (spec: field 't' if the caller has it, else read)
]]
local function archive_stream(fixed, tasks)
  return #KEYS > fixed + tasks + 1 and KEYS[#KEYS]
end

local function webhooks_stream(fixed, tasks)
  return KEYS[fixed + tasks + 1]
end

-- '_i', id, '_d', dump, ... of the tasks archive() was given and hand_over() has not written
local handed, n_handed = {}, 0
-- Most tasks in one entry: unpack() hands a Lua C function at most ~8,000 values, and a script
-- that fails halfway keeps what it wrote before (a requeue may end thousands of tasks at once).
local HAND_OVER_MAX = 256

local function hand_over(stream)
  if n_handed > 0 then redis.call('XADD', stream, '*', unpack(handed, 1, n_handed)) end
  n_handed = 0
end

local function archive(stream, key, id)
  handed[n_handed + 1] = '_i'
  handed[n_handed + 2] = id
  handed[n_handed + 3] = '_d'
  handed[n_handed + 4] = redis.call('DUMP', key)
  n_handed = n_handed + 4
  if n_handed >= 4 * HAND_OVER_MAX then hand_over(stream) end
end

local find = string.find -- a local: a global is a table lookup at each use
local function has_callback(spec)
  -- One plain search on the whole spec (no match: the common case, done), for a pattern
  -- whose first byte is rarer in JSON than a quote (each occurrence of the first byte costs
  -- a comparison); a match counts only in the options line, not in the arguments after it.
  local at = spec and find(spec, 'callback_url":', 1, true)
  if not at then return false end
  local line_start = 0
  for _ = 1, 3 do
    line_start = find(spec, '\n', line_start + 1, true)
    if not line_start then return false end
  end
  local line_end = find(spec, '\n', line_start + 1, true)
  return at > line_start and (not line_end or at < line_end)
end

local function hand_webhook(stream, id, state)
  redis.call('XADD', stream, '*', 'id', id, 's', state)
end

local function webhook(stream, key, id, state, spec)
  if has_callback(spec or redis.call('HGET', key, 't')) then hand_webhook(stream, id, state) end
end
