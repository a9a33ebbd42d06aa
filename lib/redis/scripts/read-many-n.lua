-- longpollReadManyV1: the reads of a poll of several channels, in one round trip (longpollReadV1 per channel).
-- KEYS[2i-1] meta hash and KEYS[2i] message list of channel i (KEYS[1], KEYS[2] for the first; see
-- longpollAppendV1); the caller passes the number of keys (2k), all on one standalone server.
-- ARGV[1] limit   ARGV[2] now (ms)   ARGV[3] emptyChannelTtl (ms)
-- ARGV[4i] epoch to use if the read of channel i forks it   ARGV[4i+1] position: 'o', 'l' or 'c'
-- ARGV[4i+2] cursor epoch   ARGV[4i+3] cursor seq
-- Returns one reply of longpollReadV1 per channel, in order: { epoch, seq, gap, messages } or
-- { epoch, newest seq, PAST_NEWEST }.
--- @include "read-channel"
local out = {}
for i = 1, #KEYS / 2 do
  local a = 4 * i
  out[i] = read_channel(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[1], ARGV[2], ARGV[3])
end
return out
