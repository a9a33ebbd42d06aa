--[[ longpollQueueCountsV1: counts jobs as the next claim sees them (so it first does a claim's maintenance).
  KEYS[1] waiting   KEYS[2] delayed   KEYS[3] leased   KEYS[4] state   KEYS[5] dead
  ARGV[1] maxAttempts
  Reply: { waiting, delayed, leased, dead }
]]
--- @include "queue-clock"
--- @include "queue-maintain"
maintain(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]))
return { redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[5]) }
