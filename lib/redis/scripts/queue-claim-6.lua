--[[ longpollQueueClaimV1: leases up to limit available jobs, after making due jobs available and taking back
  passed leases (see queue-maintain).
  KEYS[1] waiting   KEYS[2] delayed   KEYS[3] leased sorted set: job id -> epoch ms its lease passes
  KEYS[4] jobs   KEYS[5] state   KEYS[6] dead letters list, oldest first   (see longpollQueueEnqueueV1)
  ARGV[1] limit   ARGV[2] lease (ms)   ARGV[3] maxAttempts   ARGV[4..3+limit] one random receipt part per job
  Reply: { now, leaseUntil, waiting left, ms to the next due time or NO_DUE, { { id, "<time>:<json>", attempt,
         receipt }... } }
]]
--- @include "queue-clock"
--- @include "queue-maintain"
maintain(KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[6], tonumber(ARGV[3]))
local limit, leaseuntil = tonumber(ARGV[1]), now + tonumber(ARGV[2])
local jobs = {}
for i = 1, limit do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  local attempts = tonumber(string.match(redis.call('HGET', KEYS[5], id) or '0:', '^(%d+):')) + 1
  local receipt = id .. '.' .. ARGV[3 + i]
  redis.call('HSET', KEYS[5], id, attempts .. ':' .. receipt)
  redis.call('ZADD', KEYS[3], leaseuntil, id)
  jobs[#jobs + 1] = { id, redis.call('HGET', KEYS[4], id), attempts, receipt }
end
return { now, leaseuntil, redis.call('LLEN', KEYS[1]), next_due(KEYS[2], KEYS[3]), jobs }
