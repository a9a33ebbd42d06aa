-- longpollAppendV1: appends one message to a channel, then trims its head.
-- KEYS[1] meta hash { e = epoch, s = seq of the newest message of the life }
-- KEYS[2] message list, oldest first, elements "<seq>:<time>:<expiresAt>:<json>"
-- ARGV[1] epoch to use if the channel has no life yet
-- ARGV[2] json (stored as is)   ARGV[3] time (ms)   ARGV[4] expiresAt (ms)   ARGV[5] maxMessages
-- ARGV[6] PEXPIRE of the list (messageTtl)   ARGV[7] PEXPIRE of meta (messageTtl + emptyChannelTtl)
-- ARGV[8] deadline, in this server's clock (ms); 0 for none
-- Returns { epoch, seq, server time (ms) }, or { '', -1, server time } when run at or after the deadline, in
-- which case nothing is written: the caller has already answered 503.
local clock = redis.call('TIME')
local servertime = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local deadline = tonumber(ARGV[8])
if deadline > 0 and servertime >= deadline then return { '', -1, servertime } end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  -- A list left over from a life whose meta was evicted must never be read as part of this one.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
local len = redis.call('RPUSH', KEYS[2], string.format('%d:', seq) .. ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[2])
local max = tonumber(ARGV[5])
if len > max then redis.call('LTRIM', KEYS[2], -max, -1) end
local now = tonumber(ARGV[3])
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head or tonumber(string.match(head, '^%d+:[^:]*:([^:]*):')) > now then break end
  redis.call('LPOP', KEYS[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return { epoch, seq, servertime }
