--[[ longpollQueueDeadV1: lists dead letters, oldest first.
  KEYS[1] dead   KEYS[2] jobs   KEYS[3] state   KEYS[4] errors
  ARGV[1] limit
  Reply: { { id, "<time>:<json>", attempts, error or '' , has error 1/0 }... }
]]
local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  local err = redis.call('HGET', KEYS[4], id)
  local attempts = tonumber(string.match(redis.call('HGET', KEYS[3], id) or '0:', '^(%d+):'))
  out[#out + 1] = { id, redis.call('HGET', KEYS[2], id), attempts, err or '', err and 1 or 0 }
end
return out
