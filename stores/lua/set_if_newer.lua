-- Write hash fields only when the writer's sequence is newer than the one stored, so a
-- re-sent or late write never replaces a newer value (karma, unread counts).
-- KEYS[1] hash; ARGV[1] sequence; ARGV[2..] field, value pairs. Returns 1 if written.
local held = tonumber(redis.call('HGET', KEYS[1], 's') or '-1')
local seq = tonumber(ARGV[1])
if seq <= held then
  return 0
end
redis.call('HSET', KEYS[1], 's', seq, unpack(ARGV, 2))
return 1
