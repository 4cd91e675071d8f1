-- Put a reserved job back for a later attempt (Laravel's RedisQueue::deleteAndRelease), or, with
-- ARGV[3], hand it back untouched: the original payload (attempts not bumped) goes to the delayed set
-- instead of the reserved member, so the next pop counts the same attempt again.
-- KEYS[1] delayed zset, KEYS[2] reserved zset.
-- ARGV[1] the exact reserved member, ARGV[2] available-at (unix seconds), ARGV[3] (optional) the
-- payload to delay in its place.
--
-- Only a member we still hold is moved: if the reservation expired and another worker already
-- re-queued the job, adding it to the delayed set would run it twice.
-- Returns 1 when the job was moved, 0 when it was no longer reserved.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3] or ARGV[1])
    return 1
end
return 0
