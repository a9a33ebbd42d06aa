--[[ longpollQueueNackV1: ends a lease early; the job is available again (after delay), or dead.
  KEYS[1] waiting   KEYS[2] delayed   KEYS[3] leased   KEYS[4] state   KEYS[5] errors   KEYS[6] dead
  ARGV[1] receipt   ARGV[2] delay (ms)   ARGV[3] maxAttempts   ARGV[4] '1' with an error, '0' without   ARGV[5] error
  Reply: { NACKED_WAITING } | { NACKED_DELAYED } | { NACKED_DEAD } | { LEASE_LOST }
]]
local NACKED_WAITING = 0
local NACKED_DELAYED = 1
local NACKED_DEAD = 2
local LEASE_LOST = -1
--- @include "queue-clock"
--- @include "queue-lease-check"
local id, attempts = leased_job(KEYS[3], KEYS[4], ARGV[1])
if not id then return { LEASE_LOST } end
redis.call('ZREM', KEYS[3], id)
redis.call('HSET', KEYS[4], id, attempts .. ':')
if ARGV[4] == '1' then redis.call('HSET', KEYS[5], id, ARGV[5]) end
if attempts >= tonumber(ARGV[3]) then
  redis.call('RPUSH', KEYS[6], id)
  return { NACKED_DEAD }
end
local delay = tonumber(ARGV[2])
if delay > 0 then
  redis.call('ZADD', KEYS[2], now + delay, id)
  return { NACKED_DELAYED }
end
redis.call('RPUSH', KEYS[1], id)
return { NACKED_WAITING }
