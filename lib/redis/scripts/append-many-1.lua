-- longpollAppendManyV1: appends a batch of messages, to any number of channels, as one atomic step: each
-- message as longpollAppendV2 appends it, in batch order, so the messages of one channel get consecutive
-- increasing seqs; the deadline is checked once, for the whole batch (all of it is written, or none).
-- KEYS[1] meta hash of the first message's channel: the one key declared, by which a Cluster client routes the
-- script. The messages' keys come in ARGV: on a Cluster they span many slots of this node, which Redis allows
-- of keys a script reaches (with the allow-cross-slot-keys flag), not of declared ones. The caller passes the
-- number of keys (1).
-- ARGV[1] deadline, in this server's clock (ms); 0 for none   ARGV[2] time (ms)   ARGV[3] expiresAt (ms)
-- ARGV[4] maxMessages   ARGV[5] PEXPIRE of a list (messageTtl)   ARGV[6] PEXPIRE of a meta hash
-- then 6 per message i, from a = 6i + 1: ARGV[a] meta hash, ARGV[a+1] message list, ARGV[a+2] idempotency key
-- (see append-3.lua), ARGV[a+3] epoch to use if its channel has no life yet (or forks), ARGV[a+4] json,
-- ARGV[a+5] ttl of its idempotency key (ms); 0 for no key
-- Returns { 'stored', server time (ms), { { 'stored', epoch, seq } or { 'duplicate', epoch, seq, time of the
-- first message } per message, in order } };
-- or { 'late', server time } when run at or after the deadline: nothing is written, the caller has already
-- answered 503.
--- @include "channel-life"
local servertime = server_ms()
local deadline = tonumber(ARGV[1])
if deadline > 0 and servertime >= deadline then return { 'late', servertime } end
local rid = run_id()
--- @include "append-channel"
local out = {}
for i = 1, (#ARGV - 6) / 6 do
  local a = 6 * i + 1
  local outcome, epoch, seq, firsttime = append_channel(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[a + 5], servertime, rid)
  out[i] = { outcome, epoch, seq, firsttime }
end
return { 'stored', servertime, out }
