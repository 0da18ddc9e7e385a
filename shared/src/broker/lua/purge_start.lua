--[[ purge_start: begin a purge by renaming the queue's pending list to its purging list, in
one step, unless a purge is still being settled (then the caller settles that first).

KEYS[1]  pending list of the queue
KEYS[2]  purging list of the queue

Returns 1 (renamed), 0 (nothing pending, or a purge is still in progress)
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('RENAMENX', KEYS[1], KEYS[2])
