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
local keyttl = tonumber(ARGV[9])
if keyttl > 0 then
  local first = redis.call('GET', KEYS[3])
  if first then
    local e, s, t = string.match(first, '^([^:]*):(%d+):(%d+)$')
    return { 'duplicate', e, tonumber(s), servertime, tonumber(t) }
  end
end
local meta = redis.call('HMGET', KEYS[1], 'e', 's', 'a', 'r', 'd')
local epoch = meta[1]
local rid = run_id()
if not epoch then
  epoch = ARGV[1]
  -- A list left over from a life whose meta was evicted must never be read as part of this one.
  redis.call('DEL', KEYS[2])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'e', epoch, 'c', string.format('%d', servertime), 'r', rid)
  if meta[5] then redis.call('HSET', KEYS[1], 'p', meta[5]) end
elseif meta[4] ~= rid then
  epoch = fork(KEYS[1], epoch, tonumber(meta[2]) or 0, meta[3], ARGV[1], rid)
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
if keyttl > 0 then redis.call('SET', KEYS[3], epoch .. ':' .. seq .. ':' .. ARGV[3], 'PX', keyttl) end
return { 'stored', epoch, seq, servertime }
