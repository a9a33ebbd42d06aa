-- longpollDeleteV1: disconnects a channel: drops its messages and its life, and leaves a tombstone for
-- emptyChannelTtl so that a cursor handed out before that life began is not read as a position in the next
-- one (see empty_cursor_ok). A channel with no life is left as it is: deleting it leaves nothing.
-- KEYS[1] meta hash, KEYS[2] message list (see includes/channel-life.lua)
-- ARGV[1] emptyChannelTtl (ms)
--- @include "channel-life"
redis.call('DEL', KEYS[2])
if redis.call('HEXISTS', KEYS[1], 'e') == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'd', string.format('%d', server_ms()))
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
