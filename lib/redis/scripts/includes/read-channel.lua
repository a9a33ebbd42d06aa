-- Shared by read-2.lua and read-many-n.lua: reads up to `limit` messages of one channel after a position (see
-- read-2.lua for the arguments and the reply). Writes nothing for a channel with no life.
--- @include "channel-life"
local PAST_NEWEST = -1
local function read_channel(meta_key, msgs_key, new_epoch, mode, cursor_epoch, cursor_seq, limit, now, keep)
  local meta = redis.call('HMGET', meta_key, 'e', 's', 'c', 'p', 'a', 'r', 'd')
  local epoch, last = meta[1], tonumber(meta[2]) or 0
  keep = tonumber(keep)
  if not epoch then
    local at, ended = server_ms(), tonumber(meta[7])
    if mode == 'c' and empty_cursor_ok(cursor_epoch, cursor_seq, at, ended, keep) then
      -- The cursor the poll started from while it is fresh (an empty answer hands it back), else a new one.
      if at - tonumber(string.sub(cursor_epoch, 2)) < keep / 2 then return { cursor_epoch, 0, 0, {} } end
      return { empty_epoch(at, ended), 0, 0, {} }
    end
    return { empty_epoch(at, ended), 0, mode == 'c' and 1 or 0, {} }
  end
  if redis.call('PTTL', meta_key) < keep / 2 then redis.call('PEXPIRE', meta_key, keep) end
  if mode == 'l' then return { epoch, last, 0, {} } end
  -- `position`: the seq the cursor stands for in this life, or nil when it stands for none (gap, from the
  -- oldest); `gap`: set when the cursor is past what survived a loss of writes.
  local position, gap = nil, 0
  if mode == 'c' then
    local cursor = tonumber(cursor_seq)
    if cursor_epoch == epoch then
      if cursor > last then
        local rid = run_id()
        if meta[6] == rid then return { epoch, last, PAST_NEWEST } end
        epoch = fork(meta_key, epoch, last, meta[5], new_epoch, rid)
        position, gap = last, 1
      else
        if cursor == last then return { epoch, last, 0, {} } end
        position = cursor
      end
    else
      local bound = ancestor_bound(meta[5], cursor_epoch)
      if bound then
        position = math.min(cursor, bound)
        if cursor > bound then gap = 1 end
      elseif empty_cursor_ok(cursor_epoch, cursor_seq, tonumber(meta[3]) or 0, tonumber(meta[4]), keep) then
        position = 0
      end
    end
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
  local after = first - 1
  if mode == 'c' then
    if position == nil or position < first - 1 then gap = 1 else after = position end
  end
  local n = last - after
  if n <= 0 then return { epoch, after, gap, {} } end
  local count = math.min(n, tonumber(limit))
  local messages = redis.call('LRANGE', msgs_key, -n, count - n - 1)
  -- Messages written before a fork keep their ids: the ancestors name the life each was written in.
  local newest = meta[5] and tonumber(string.match(meta[5], '^[^:]+:(%d+)'))
  if newest and after < newest then return { epoch, after, gap, messages, meta[5] } end
  return { epoch, after, gap, messages }
end
