-- The job whose current, unpassed lease `receipt` is, or nil. A receipt is "<job id>.<random>" and is stored
-- in the job's state ("<attempts>:<receipt>") for the length of one lease only. Needs KEYS leased and state
-- passed as `leased` and `state`, and `now`.
local function leased_job (leased, state, receipt)
  local id = string.match(receipt, '^([^.]+)%.[^.]+$')
  if not id then return nil end
  local current = redis.call('HGET', state, id)
  if not current or string.sub(current, string.find(current, ':', 1, true) + 1) ~= receipt then return nil end
  local untilms = redis.call('ZSCORE', leased, id)
  -- A lease that passed is lost even before a claim takes the job back: another worker may have it by then.
  if not untilms or tonumber(untilms) <= now then return nil end
  return id, tonumber(string.match(current, '^(%d+):'))
end
