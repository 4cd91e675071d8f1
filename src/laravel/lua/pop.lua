-- Reserve up to ARGV[2] jobs from the head of a ready list (Laravel's RedisQueue::pop, batched).
-- KEYS[1] ready list, KEYS[2] reserved zset, KEYS[3] notify list.
-- ARGV[1] reserved-until (unix seconds), ARGV[2] how many jobs at most (>= 1).
--
-- A valid job gets attempts + 1, is re-encoded and stored in the reserved zset. A payload that is
-- not JSON, not an object, or has no numeric `attempts` is NOT dropped (Laravel's script errors
-- after its LPOP and loses it): its original bytes are reserved as they are and it is returned
-- with a reason, so the worker can record it as failed and then delete it.
--
-- Returns a flat array with three entries per job: original, reserved, reason (false when valid).
local result = {}
local max = tonumber(ARGV[2]) or 1

for _ = 1, max do
    local original = redis.call('LPOP', KEYS[1])
    if not original then
        break
    end

    local reason = false
    local reserved = original
    local decoded, job = pcall(cjson.decode, original)
    if not decoded then
        reason = 'payload is not valid JSON'
    elseif type(job) ~= 'table' then
        reason = 'payload is not a JSON object'
    elseif type(job.attempts) ~= 'number' then
        reason = 'payload has no numeric attempts'
    else
        job.attempts = job.attempts + 1
        local encoded, text = pcall(cjson.encode, job)
        if encoded then
            reserved = text
        else
            reason = 'payload cannot be re-encoded as JSON'
        end
    end

    redis.call('ZADD', KEYS[2], ARGV[1], reserved)
    -- One token was pushed with this job; the list may already be empty, which is fine.
    redis.call('LPOP', KEYS[3])

    result[#result + 1] = original
    result[#result + 1] = reserved
    result[#result + 1] = reason
end

return result
