-- Move due members of a zset back onto a ready list (Laravel's RedisQueue::migrateExpiredJobs).
-- KEYS[1] source zset (delayed or reserved), KEYS[2] ready list, KEYS[3] notify list.
-- ARGV[1] now (unix seconds), ARGV[2] how many at most (-1 = all).
--
-- Oldest first; each moved job gets one notify token. Works in chunks of 100 so the argument
-- lists handed to unpack stay small. Returns how many jobs were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])

for first = 1, #due, 100 do
    local last = math.min(first + 99, #due)
    local tokens = {}
    for i = first, last do
        tokens[#tokens + 1] = '1'
    end
    redis.call('ZREM', KEYS[1], unpack(due, first, last))
    redis.call('RPUSH', KEYS[2], unpack(due, first, last))
    redis.call('RPUSH', KEYS[3], unpack(tokens))
end

return #due
