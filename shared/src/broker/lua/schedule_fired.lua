--[[ schedule_fired: a beat decided occurrences of a schedule. Moves its cursor forward (never
back, whatever order racing beats report in) and records the run. Every beat that fired an
occurrence, or found it fired already, reports it; the first report of an occurrence wins, so
the last run is recorded even if the beat that enqueued it died before reporting.

KEYS[1]   hash of definitions
KEYS[2]   the schedule's state hash
ARGV[1]   name
ARGV[2]   new cursor, ms (0 = leave it)
ARGV[3]   occurrence fired, ms (0 = a manual run, not an occurrence)
ARGV[4]   when the run was enqueued, ms
ARGV[5]   the run's task id ('' = nothing ran: only the cursor moves)

Returns
  1    recorded
  0    no such schedule (deleted meanwhile): nothing written
]]
local name = ARGV[1]
local cursor, occurrence, run_at, task_id = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
if redis.call('HEXISTS', KEYS[1], name) == 0 then return 0 end

if cursor > 0 then
  local current = tonumber(redis.call('HGET', KEYS[2], 'cursor'))
  if not current or current < cursor then redis.call('HSET', KEYS[2], 'cursor', cursor) end
end
if task_id ~= '' then
  local last = tonumber(redis.call('HGET', KEYS[2], 'occurrence')) or 0
  if occurrence == 0 or occurrence > last then
    redis.call('HSET', KEYS[2], 'last_run', run_at, 'last_task_id', task_id)
    if occurrence > 0 then redis.call('HSET', KEYS[2], 'occurrence', occurrence) end
  end
end
return 1
