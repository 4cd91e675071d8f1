-- Delete every job of one queue (Laravel's RedisQueue::clear).
-- KEYS[1] ready list, KEYS[2] delayed zset, KEYS[3] reserved zset, KEYS[4] notify list.
-- Returns how many jobs there were.
local count = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return count
