--[[ longpollQueueEnqueueV1: stores a job, unless its de-duplicating key was seen.
  KEYS[1] waiting list of job ids, oldest first
  KEYS[2] delayed sorted set: job id -> epoch ms it becomes available
  KEYS[3] jobs hash: job id -> "<enqueue time ms>:<json>"
  KEYS[4] state hash: job id -> "<attempts>:<receipt of the current lease, or empty>"
  KEYS[5] the key's string (id of the first job with it, expiring after keyTtl); unused without a key
  ARGV[1] new job id   ARGV[2] json   ARGV[3] delay (ms)   ARGV[4] keyTtl (ms)   ARGV[5] '1' with a key, '0' without
  ARGV[6] deadline, in this server's clock (ms); 0 for none
  Reply: { ENQUEUED, id } | { DUPLICATE, first job's id } | { ID_TAKEN } (draw another id) |
         { PAST_DEADLINE } (run at or after the deadline: the caller answered 503, nothing is written)
]]
local ENQUEUED = 0
local DUPLICATE = 1
local ID_TAKEN = 2
local PAST_DEADLINE = 3
--- @include "queue-clock"
local deadline = tonumber(ARGV[6])
if deadline > 0 and now >= deadline then return { PAST_DEADLINE } end
local id, haskey = ARGV[1], ARGV[5] == '1'
if haskey then
  local seen = redis.call('GET', KEYS[5])
  if seen then return { DUPLICATE, seen } end
end
if redis.call('HSETNX', KEYS[3], id, now .. ':' .. ARGV[2]) == 0 then return { ID_TAKEN } end
redis.call('HSET', KEYS[4], id, '0:')
if haskey then redis.call('SET', KEYS[5], id, 'PX', ARGV[4]) end
local delay = tonumber(ARGV[3])
if delay > 0 then redis.call('ZADD', KEYS[2], now + delay, id) else redis.call('RPUSH', KEYS[1], id) end
return { ENQUEUED, id }
