-- Shared by the append and read scripts: a channel's lives, and how a cursor maps into the current one.
--
-- The meta hash of a channel: e epoch of the current life, s seq of its newest message, c when the life began
-- (this server's clock, ms), p when the life before it was disconnected (absent if none is known), r the run id
-- of the Redis process that last wrote the channel, a the ancestors: earlier epochs of this life's history
-- ("<epoch>:<bound>,…", newest first), whose cursors up to <bound> are positions in the current life. A meta
-- hash holding only d is a tombstone: the channel was disconnected at d and has no life now.
--
-- Why forks (guarantee 6): a Redis restarted from an older snapshot, or a replica promoted before it had the
-- newest writes, brings a channel back with a smaller newest seq than clients have seen. Every write records
-- the run id of the process it ran on; a process that did not write the channel last may have lost some of its
-- writes (the run id changes on every start, and differs between a master and its replicas, so a restart from
-- a snapshot, an AOF that lost its tail and a promoted replica all show), so the first append there (or a read
-- of a cursor past the newest message) forks the channel: a new epoch that continues at the newest seq that
-- survived, with the old epoch recorded as an ancestor bounded by that seq. A cursor within what survived is
-- still a position (no gap); one past it gets a gap and the messages after the surviving seq — which carry
-- the new epoch, so no id handed out before the loss is handed out again. The evidence is the server's, never
-- a request's: a made-up cursor can only fork a channel that the next append would fork anyway, and a fork is
-- invisible to every cursor within what survived. A restart that lost nothing forks too, harmlessly.
--
-- A channel with no life (never pushed, expired, or disconnected) is not written by reads: its cursor is the
-- empty token "_<ms>.0", about the time the read answered (see empty_epoch), so polling names that never get a message leaves nothing
-- in Redis. Such a cursor is a position before the first message of a life that began after it, with no
-- other life between: see empty_cursor_ok.
local MAX_ANCESTORS = 4

local function server_ms ()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

local function run_id ()
  local info = redis.call('INFO', 'server')
  local at = string.find(info, 'run_id:', 1, true)
  return string.sub(info, at + 7, at + 46)
end

-- The empty-channel epoch for a read at `now` ms: rounded down to the second, so polls held on one empty
-- channel mostly share one cursor (and one read when its first message arrives), but never before `ended`.
local function empty_epoch (now, ended)
  return string.format('_%d', math.max(now - now % 1000, ended or 0))
end

-- Whether cursor "_<t>.<seq>" is the position before the first message of a life, or of no life, that began
-- at `began` (now, for a channel with no life) after the previous one ended at `ended` (nil when none is
-- known). A life that began after t and ended, unseen, before `began` would have lasted at least
-- emptyChannelTtl (`keep`) unless disconnected, which leaves a tombstone for that long: so t must be at or
-- after the tombstone, and `began` within `keep` of t.
local function empty_cursor_ok (cursor_epoch, cursor_seq, began, ended, keep)
  local t = tonumber(string.match(cursor_epoch, '^_(%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?)$'))
  if t == nil or tonumber(cursor_seq) ~= 0 then return false end
  return t <= began and began - t < keep and (ended == nil or t >= ended)
end

-- The bound of `epoch` among the ancestors "<epoch>:<bound>,…", or nil.
local function ancestor_bound (ancestors, epoch)
  if not ancestors then return nil end
  for e, bound in string.gmatch(ancestors, '([^:,]+):(%d+)') do
    if e == epoch then return tonumber(bound) end
  end
  return nil
end

-- Forks the channel's life at its newest seq `last`: epoch `new_epoch`, with `epoch` (bound `last`) as the
-- newest ancestor and every older ancestor's bound lowered to at most `last`. Returns the new epoch.
local function fork (meta_key, epoch, last, ancestors, new_epoch, rid)
  local kept = { epoch .. ':' .. last }
  if ancestors then
    for e, bound in string.gmatch(ancestors, '([^:,]+):(%d+)') do
      if #kept >= MAX_ANCESTORS then break end
      kept[#kept + 1] = e .. ':' .. math.min(tonumber(bound), last)
    end
  end
  redis.call('HSET', meta_key, 'e', new_epoch, 'a', table.concat(kept, ','), 'r', rid)
  return new_epoch
end
