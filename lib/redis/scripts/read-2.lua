-- longpollReadV1: reads up to limit messages after a position; creates the channel's life if it has none.
-- KEYS[1] meta hash, KEYS[2] message list (see longpollAppendV1)
-- ARGV[1] epoch to use if the channel has no life yet
-- ARGV[2] position: 'o' oldest, 'l' latest, 'c' cursor   ARGV[3] cursor epoch   ARGV[4] cursor seq
-- ARGV[5] limit   ARGV[6] now (ms)   ARGV[7] emptyChannelTtl (ms)
-- Returns { epoch, seq, gap, messages } where seq is the seq just before the first message returned (or, with
-- none, the answer's seq) and gap is 0 or 1; or { epoch, newest seq, -1 } for a cursor past the newest message.
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local epoch, last = meta[1], tonumber(meta[2]) or 0
local keep = tonumber(ARGV[7])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('PEXPIRE', KEYS[1], keep)
elseif redis.call('PTTL', KEYS[1]) < keep / 2 then
  redis.call('PEXPIRE', KEYS[1], keep)
end
local mode = ARGV[2]
if mode == 'l' then return { epoch, last, 0, {} } end
local cursor = tonumber(ARGV[4])
if mode == 'c' and ARGV[3] == epoch then
  if cursor > last then return { epoch, last, -1 } end
  if cursor == last then return { epoch, last, 0, {} } end
end
local first = last + 1
local now = tonumber(ARGV[6])
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then break end
  local seq, expires = string.match(head, '^(%d+):[^:]*:([^:]*):')
  if tonumber(expires) > now then first = tonumber(seq) break end
  redis.call('LPOP', KEYS[2])
end
local after, gap = first - 1, 0
if mode == 'c' then
  if ARGV[3] ~= epoch or cursor < first - 1 then gap = 1 else after = cursor end
end
local n = last - after
if n <= 0 then return { epoch, after, gap, {} } end
local count = math.min(n, tonumber(ARGV[5]))
return { epoch, after, gap, redis.call('LRANGE', KEYS[2], -n, count - n - 1) }
