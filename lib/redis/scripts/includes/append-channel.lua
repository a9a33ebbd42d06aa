-- Shared by append-3.lua and append-many-1.lua (each includes channel-life first): appends one message to a
-- channel, then trims its head; with an idempotency key (key_ttl > 0), first checks it, in the same atomic step,
-- so concurrent appends with one key store once (see append-3.lua for the keys and arguments). `servertime` is
-- this server's clock (ms), `rid` its run id (run_id(): read once per script, INFO is not free).
-- Returns 'stored', epoch, seq; or 'duplicate', epoch, seq, time of the first message (nothing written).
local function append_channel(meta_key, msgs_key, id_key, new_epoch, json, time, expires_at, max, msgs_ttl, meta_ttl, key_ttl, servertime, rid)
  local keyttl = tonumber(key_ttl)
  if keyttl > 0 then
    local first = redis.call('GET', id_key)
    if first then
      local e, s, t = string.match(first, '^([^:]*):(%d+):(%d+)$')
      return 'duplicate', e, tonumber(s), tonumber(t)
    end
  end
  local meta = redis.call('HMGET', meta_key, 'e', 's', 'a', 'r', 'd')
  local epoch = meta[1]
  if not epoch then
    epoch = new_epoch
    -- A list left over from a life whose meta was evicted must never be read as part of this one.
    redis.call('DEL', msgs_key)
    redis.call('DEL', meta_key)
    redis.call('HSET', meta_key, 'e', epoch, 'c', string.format('%d', servertime), 'r', rid)
    if meta[5] then redis.call('HSET', meta_key, 'p', meta[5]) end
  elseif meta[4] ~= rid then
    epoch = fork(meta_key, epoch, tonumber(meta[2]) or 0, meta[3], new_epoch, rid)
  end
  local seq = redis.call('HINCRBY', meta_key, 's', 1)
  local len = redis.call('RPUSH', msgs_key, string.format('%d:', seq) .. time .. ':' .. expires_at .. ':' .. json)
  max = tonumber(max)
  if len > max then redis.call('LTRIM', msgs_key, -max, -1) end
  local now = tonumber(time)
  while true do
    local head = redis.call('LINDEX', msgs_key, 0)
    if not head or tonumber(string.match(head, '^%d+:[^:]*:([^:]*):')) > now then break end
    redis.call('LPOP', msgs_key)
  end
  redis.call('PEXPIRE', msgs_key, msgs_ttl)
  redis.call('PEXPIRE', meta_key, meta_ttl)
  if keyttl > 0 then redis.call('SET', id_key, epoch .. ':' .. seq .. ':' .. time, 'PX', keyttl) end
  return 'stored', epoch, seq
end
