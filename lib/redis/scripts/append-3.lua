-- longpollAppendV2: appends one message to a channel, then trims its head; with an idempotency key,
-- first checks it, in the same atomic step, so concurrent appends with one key store once.
-- KEYS[1] meta hash (see includes/channel-life.lua): a new life, or a fork when another Redis process wrote it last
-- KEYS[2] message list, oldest first, elements "<seq>:<time>:<expiresAt>:<json>"
-- KEYS[3] idempotency key, string "<epoch>:<seq>:<time>" of the key's first message (unused when ARGV[9] is 0)
-- ARGV[1] epoch to use if the channel has no life yet, or forks
-- ARGV[2] json (stored as is)   ARGV[3] time (ms)   ARGV[4] expiresAt (ms)   ARGV[5] maxMessages
-- ARGV[6] PEXPIRE of the list (messageTtl)   ARGV[7] PEXPIRE of meta (messageTtl + emptyChannelTtl)
-- ARGV[8] deadline, in this server's clock (ms); 0 for none
-- ARGV[9] ttl of the idempotency key (ms); 0 for no key
-- Returns { 'stored', epoch, seq, server time (ms) };
-- or { 'duplicate', epoch, seq, server time, time of the first message } when the key is remembered: nothing
-- is written;
-- or { 'late', '', 0, server time } when run at or after the deadline: nothing is written, the caller has
-- already answered 503.
--- @include "channel-life"
local servertime = server_ms()
local deadline = tonumber(ARGV[8])
if deadline > 0 and servertime >= deadline then return { 'late', '', 0, servertime } end
--- @include "append-channel"
local outcome, epoch, seq, firsttime = append_channel(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[9], servertime, run_id())
if outcome == 'duplicate' then return { 'duplicate', epoch, seq, servertime, firsttime } end
return { 'stored', epoch, seq, servertime }
