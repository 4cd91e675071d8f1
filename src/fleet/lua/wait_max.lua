-- Keeps the largest wait sample of a history bucket.
-- KEYS: the bucket hashes (a minute and an hour); ARGV[1]: the field; ARGV[2]: the sample (seconds);
-- ARGV[2 + i]: the unix second at which KEYS[i] expires.
local sample = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local old = tonumber(redis.call('HGET', key, ARGV[1]))
  if old == nil or sample > old then
    redis.call('HSET', key, ARGV[1], ARGV[2])
  end
  redis.call('EXPIREAT', key, ARGV[2 + i])
end
return 1
