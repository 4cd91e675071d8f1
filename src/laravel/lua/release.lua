-- Put a reserved job back for a later attempt (Laravel's RedisQueue::deleteAndRelease).
-- KEYS[1] delayed zset, KEYS[2] reserved zset.
-- ARGV[1] the exact reserved member, ARGV[2] available-at (unix seconds).
--
-- Only a member we still hold is moved: if the reservation expired and another worker already
-- re-queued the job, adding it to the delayed set would run it twice.
-- Returns 1 when the job was moved, 0 when it was no longer reserved.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
    return 1
end
return 0
