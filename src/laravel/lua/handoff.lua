-- Hand a reserved job to another queue without consuming an attempt (no Laravel equivalent):
-- the reservation is dropped and the given payload (normally the original, un-incremented
-- bytes) is appended to the other queue, in one atomic step.
-- KEYS[1] reserved zset of the source queue, KEYS[2] target ready list, KEYS[3] target notify list.
-- ARGV[1] the exact reserved member, ARGV[2] the payload to push.
--
-- Only a member we still hold is handed over, so an expired and re-queued job is not duplicated.
-- Returns 1 when handed over, 0 when it was no longer reserved.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[2])
    redis.call('RPUSH', KEYS[3], 1)
    return 1
end
return 0
