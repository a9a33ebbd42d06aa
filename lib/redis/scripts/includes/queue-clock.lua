-- The server's clock in ms: every instance's leases are measured by one clock, whatever theirs say.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
