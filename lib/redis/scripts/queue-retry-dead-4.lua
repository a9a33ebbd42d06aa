--[[ longpollQueueRetryDeadV1: makes up to batch dead letters available again, attempts reset, errors cleared.
  KEYS[1] waiting   KEYS[2] dead   KEYS[3] state   KEYS[4] errors
  ARGV[1] batch
  Reply: number of jobs requeued (fewer than batch: the dead letters are empty)
]]
local ids = redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return 0 end
redis.call('LTRIM', KEYS[2], #ids, -1)
for _, id in ipairs(ids) do
  redis.call('HSET', KEYS[3], id, '0:')
  redis.call('HDEL', KEYS[4], id)
end
redis.call('RPUSH', KEYS[1], unpack(ids))
return #ids
