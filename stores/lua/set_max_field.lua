-- Raise a hash field to a value if it is higher (counts that never go down).
-- KEYS[1] hash; ARGV[1] field, ARGV[2] value.
local held = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > held then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
