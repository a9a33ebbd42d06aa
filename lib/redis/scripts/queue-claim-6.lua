--[[ longpollQueueClaimV1: leases up to limit available jobs, after making due jobs available and taking back
  passed leases (see queue-maintain).
  KEYS[1] waiting   KEYS[2] delayed   KEYS[3] leased sorted set: job id -> epoch ms its lease passes
  KEYS[4] jobs   KEYS[5] state   KEYS[6] dead letters list, oldest first   (see longpollQueueEnqueueV1)
  ARGV[1] limit   ARGV[2] lease (ms)   ARGV[3] maxAttempts   ARGV[4..3+limit] one random receipt part per job
  Reply: { now, leaseUntil, waiting left, ms to the next due time or NO_DUE, { { id, "<time>:<json>", attempt,
         receipt }... }, passed leases taken back, of which dead-lettered }
]]
--- @include "queue-clock"
--- @include "queue-maintain"
local expired, died = maintain(KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], tonumber(ARGV[3]))
local limit, leaseuntil = tonumber(ARGV[1]), now + tonumber(ARGV[2])
local jobs = {}
while #jobs < limit do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local stored = redis.call('HGET', KEYS[4], id)
  if stored then
    local attempts = tonumber(string.match(redis.call('HGET', KEYS[5], id) or '0:', '^(%d+):')) + 1
    local receipt = id .. '.' .. ARGV[4 + #jobs]
    redis.call('HSET', KEYS[5], id, attempts .. ':' .. receipt)
    redis.call('ZADD', KEYS[3], leaseuntil, id)
    jobs[#jobs + 1] = { id, stored, attempts, receipt }
  else
    -- An id without its data (the data evicted, or deleted by hand): nothing to hand out, drop what is left.
    redis.call('HDEL', KEYS[5], id)
  end
end
return { now, leaseuntil, redis.call('LLEN', KEYS[1]), next_due(KEYS[2], KEYS[3]), jobs, expired, died }
