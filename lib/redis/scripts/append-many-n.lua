-- longpollAppendManyV1: appends a batch of messages, to any number of channels, as one atomic step: each
-- message as longpollAppendV2 appends it, in batch order, so the messages of one channel get consecutive
-- increasing seqs; the deadline is checked once, for the whole batch (all of it is written, or none).
-- KEYS[3i-2] meta hash, KEYS[3i-1] message list, KEYS[3i] idempotency key of message i (see append-3.lua);
-- the caller passes the number of keys (3k). On a Cluster every key is on this node (the caller groups the
-- batch by node and sends this script with the allow-cross-slot-keys flag).
-- ARGV[1] deadline, in this server's clock (ms); 0 for none   ARGV[2] time (ms)   ARGV[3] expiresAt (ms)
-- ARGV[4] maxMessages   ARGV[5] PEXPIRE of a list (messageTtl)   ARGV[6] PEXPIRE of a meta hash
-- ARGV[3i+4] epoch to use if message i's channel has no life yet   ARGV[3i+5] json of message i
-- ARGV[3i+6] ttl of message i's idempotency key (ms); 0 for no key
-- Returns { 'stored', server time (ms), { { 'stored', epoch, seq } or { 'duplicate', epoch, seq, time of the
-- first message } per message, in order } };
-- or { 'late', server time } when run at or after the deadline: nothing is written, the caller has already
-- answered 503.
local clock = redis.call('TIME')
local servertime = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local deadline = tonumber(ARGV[1])
if deadline > 0 and servertime >= deadline then return { 'late', servertime } end
--- @include "append-channel"
local out = {}
for i = 1, #KEYS / 3 do
  local k, a = 3 * i, 3 * i + 4
  local outcome, epoch, seq, firsttime = append_channel(KEYS[k - 2], KEYS[k - 1], KEYS[k], ARGV[a], ARGV[a + 1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[a + 2])
  out[i] = { outcome, epoch, seq, firsttime }
end
return { 'stored', servertime, out }
