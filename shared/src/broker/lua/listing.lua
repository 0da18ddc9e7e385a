--[[ listing: entries of one queue's listing log, from the one with sequence number ARGV[1]
towards older ones. The log is a list, newest first; an entry's sequence number counts the
queue's tasks before it (0 for its first), so it never changes: the head index of entry s is
(length + dropped) - 1 - s, read in one step with the length, since an enqueue pushing in
between would shift every index.

KEYS[1]  listing log of the queue (list of '<creation ms>-<id suffix>', newest first)
KEYS[2]  stats hash of the queue (field 'listing_dropped': entries removed by the cap)
ARGV[1]  sequence number of the first entry wanted; -1 = the newest
ARGV[2]  most entries to return

Returns  {first's sequence number (text), entry, entry, ...}: fewer entries than asked when
         the log ends there (none when ARGV[1] is below what the cap kept)
]]
local total = redis.call('LLEN', KEYS[1]) + (tonumber(redis.call('HGET', KEYS[2], 'listing_dropped')) or 0)
local seq = tonumber(ARGV[1])
if seq < 0 or seq > total - 1 then seq = total - 1 end
local first = total - 1 - seq
local out = redis.call('LRANGE', KEYS[1], first, first + tonumber(ARGV[2]) - 1)
table.insert(out, 1, string.format('%d', seq))
return out
