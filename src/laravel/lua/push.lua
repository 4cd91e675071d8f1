-- Append a job to a ready list and wake one blocked worker (Laravel's RedisQueue::pushRaw).
-- KEYS[1] ready list, KEYS[2] notify list. ARGV[1] the payload.
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 1)
return 1
