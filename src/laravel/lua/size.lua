-- Ready + delayed + reserved jobs of one queue (Laravel's RedisQueue::size).
-- KEYS[1] ready list, KEYS[2] delayed zset, KEYS[3] reserved zset.
return redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
