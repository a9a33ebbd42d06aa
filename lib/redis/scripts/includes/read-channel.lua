-- Shared by read-2.lua and read-many-n.lua: reads up to `limit` messages of one channel after a position, and
-- creates the channel's life if it has none (see read-2.lua for the arguments and the reply).
local PAST_NEWEST = -1
local function read_channel(meta_key, msgs_key, new_epoch, mode, cursor_epoch, cursor_seq, limit, now, keep)
  local meta = redis.call('HMGET', meta_key, 'e', 's')
  local epoch, last = meta[1], tonumber(meta[2]) or 0
  keep = tonumber(keep)
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', msgs_key)
    redis.call('HSET', meta_key, 'e', epoch, 's', 0)
    redis.call('PEXPIRE', meta_key, keep)
  elseif redis.call('PTTL', meta_key) < keep / 2 then
    redis.call('PEXPIRE', meta_key, keep)
  end
  if mode == 'l' then return { epoch, last, 0, {} } end
  local cursor = tonumber(cursor_seq)
  if mode == 'c' and cursor_epoch == epoch then
    if cursor > last then return { epoch, last, PAST_NEWEST } end
    if cursor == last then return { epoch, last, 0, {} } end
  end
  local first = last + 1
  now = tonumber(now)
  while true do
    local head = redis.call('LINDEX', msgs_key, 0)
    if not head then break end
    local seq, expires = string.match(head, '^(%d+):[^:]*:([^:]*):')
    if tonumber(expires) > now then first = tonumber(seq) break end
    redis.call('LPOP', msgs_key)
  end
  local after, gap = first - 1, 0
  if mode == 'c' then
    if cursor_epoch ~= epoch or cursor < first - 1 then gap = 1 else after = cursor end
  end
  local n = last - after
  if n <= 0 then return { epoch, after, gap, {} } end
  local count = math.min(n, tonumber(limit))
  return { epoch, after, gap, redis.call('LRANGE', msgs_key, -n, count - n - 1) }
end
