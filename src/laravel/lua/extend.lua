-- Keep a running job's reservation (no Laravel equivalent: a lease against duplicate runs).
-- KEYS[1] reserved zset. ARGV[1] the exact reserved member, ARGV[2] reserved-until (unix seconds).
--
-- Only the member we hold is touched: once it expired and a migration moved it back (PHP's or
-- ours), the job belongs to whoever pops it next and nothing is added here. The score only moves
-- forward, so a late extension never shortens a reservation.
-- Returns 1 when the member is still reserved, 0 when it is gone.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
    return 0
end
if tonumber(score) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
end
return 1
