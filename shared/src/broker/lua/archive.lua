--[[ archive: hand a task that ended over to the PostgreSQL archive, in the same step that
records its ending, so that nothing is lost between Redis and PostgreSQL (the archiver,
celeriac-archive, may be down, slow or killed: it catches up from the stream). Prepended,
after history.lua, to every script that makes a task terminal (see scripts.rs).

The hand-over is one entry on the queue's archive stream (keys.rs, Keys::archive) holding the
task id and a copy of every field of the task's record, as it is after the ending: the
archiver builds the full row from the entry alone, even if the record has expired by then,
and the record's own lifetime (the result TTL) is unchanged.

The archive is on when the caller passes the stream as the script's last key, after the task
hashes (one key more than the script's fixed keys and tasks); when it is off nothing here runs
but one comparison per call.

archive_stream(fixed, tasks)  the archive stream, or false when the archive is off (fixed: the
                              script's fixed keys before the task hashes; tasks: how many)
archive(stream, key, id)      appends the task (its hash key and id) to the stream; callers
                              call it only when there is one ('if stream then'), so with the
                              archive off not even the task id is built
]]
local function archive_stream(fixed, tasks)
  return #KEYS > fixed + tasks and KEYS[#KEYS]
end

local function archive(stream, key, id)
  local fields = redis.call('HGETALL', key)
  redis.call('XADD', stream, '*', '_id', id, unpack(fields))
end
