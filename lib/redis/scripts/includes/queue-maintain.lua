-- Makes due delayed jobs available and takes back jobs whose lease passed: to waiting, or to the dead letters
-- when they had maxAttempts leases. At most MAINTAIN_BATCH of each per call, so one call stays short; the rest
-- are already due, so the next claim (which the caller triggers at once: next due time 0) continues.
-- Returns how many passed leases it took back, and how many of those went to the dead letters.
local MAINTAIN_BATCH = 1000
local function maintain (waiting, delayed, leased, state, dead, maxattempts)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, MAINTAIN_BATCH)
  if #due > 0 then
    redis.call('ZREM', delayed, unpack(due))
    redis.call('RPUSH', waiting, unpack(due))
  end
  local passed = redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, MAINTAIN_BATCH)
  local died = 0
  for _, id in ipairs(passed) do
    redis.call('ZREM', leased, id)
    local attempts = tonumber(string.match(redis.call('HGET', state, id) or '0:', '^(%d+):'))
    redis.call('HSET', state, id, attempts .. ':')
    if attempts >= maxattempts then
      redis.call('RPUSH', dead, id)
      died = died + 1
    else
      redis.call('RPUSH', waiting, id)
    end
  end
  return #passed, died
end

-- Milliseconds until the earliest delayed job or lease end, or NO_DUE.
local NO_DUE = -1
local function next_due (delayed, leased)
  local first = math.huge
  local d = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if d[2] then first = math.min(first, tonumber(d[2])) end
  local l = redis.call('ZRANGE', leased, 0, 0, 'WITHSCORES')
  if l[2] then first = math.min(first, tonumber(l[2])) end
  if first == math.huge then return NO_DUE end
  return math.max(0, first - now)
end
