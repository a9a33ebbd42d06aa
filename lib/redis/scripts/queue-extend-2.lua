--[[ longpollQueueExtendV1: moves the end of a current lease to lease ms from now; the receipt stays valid.
  KEYS[1] leased   KEYS[2] state
  ARGV[1] receipt   ARGV[2] lease (ms)
  Reply: { EXTENDED, leaseUntil } | { LEASE_LOST }
]]
local EXTENDED = 0
local LEASE_LOST = -1
--- @include "queue-clock"
--- @include "queue-lease-check"
local id = leased_job(KEYS[1], KEYS[2], ARGV[1])
if not id then return { LEASE_LOST } end
local leaseuntil = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', leaseuntil, id)
return { EXTENDED, leaseuntil }
