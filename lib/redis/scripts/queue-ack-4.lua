--[[ longpollQueueAckV1: deletes the jobs of these receipts, all or none.
  KEYS[1] leased   KEYS[2] jobs   KEYS[3] state   KEYS[4] errors hash: job id -> last nack error
  ARGV[1..n] receipts
  Reply: { ACKED, jobs deleted } | { LEASE_LOST, index (1-based) of the first receipt that is not a current lease }
]]
local ACKED = 0
local LEASE_LOST = -1
--- @include "queue-clock"
--- @include "queue-lease-check"
local ids = {}
for i, receipt in ipairs(ARGV) do
  local id = leased_job(KEYS[1], KEYS[3], receipt)
  if not id then return { LEASE_LOST, i } end
  ids[#ids + 1] = id
end
local deleted = redis.call('ZREM', KEYS[1], unpack(ids))
redis.call('HDEL', KEYS[2], unpack(ids))
redis.call('HDEL', KEYS[3], unpack(ids))
redis.call('HDEL', KEYS[4], unpack(ids))
return { ACKED, deleted }
