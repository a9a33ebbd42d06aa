-- longpollDeleteV1: disconnects a channel: drops its messages and its life, and leaves a tombstone for
-- emptyChannelTtl so that a cursor handed out before that life began is not read as a position in the next
-- one (see empty_cursor_ok) — also for a channel that had no message, since a disconnected channel's cursor
-- belongs to the life that ended (contract §1.4). The tombstone is what a disconnect costs: one small hash for
-- emptyChannelTtl.
-- KEYS[1] meta hash, KEYS[2] message list (see includes/channel-life.lua)
-- ARGV[1] emptyChannelTtl (ms)
-- Returns 1.
--- @include "channel-life"
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'd', string.format('%d', server_ms()))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
