--[[ webhook_done: log one delivery attempt of a task's completion webhook in its record and,
when the ending needs no more attempts (delivered, or given up), acknowledge and delete its
entry on the queue's webhooks stream, in the same step: the log never misses an attempt that
ended its entry, and an entry is never dropped without its last attempt in the log.

The log is field 'wh' of the task hash: one JSON object per line, oldest first, at most the
last 20 lines. A record that expired meanwhile is not brought back.

KEYS[1]  task hash
KEYS[2]  webhooks stream of the task's queue
ARGV[1]  consumer group
ARGV[2]  stream entry id
ARGV[3]  the attempt, as one line of JSON
ARGV[4]  '1': acknowledge and delete the entry; '0': leave it pending for the next attempt
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  local log = redis.call('HGET', KEYS[1], 'wh')
  log = log and (log .. '\n' .. ARGV[3]) or ARGV[3]
  local _, lines = string.gsub(log, '\n', '')
  while lines >= 20 do
    log = string.sub(log, string.find(log, '\n', 1, true) + 1)
    lines = lines - 1
  end
  redis.call('HSET', KEYS[1], 'wh', log)
end
if ARGV[4] == '1' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
return 1
