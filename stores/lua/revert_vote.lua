-- Undo a vote whose event could not be published, if nothing changed the target since.
-- KEYS[1] target hash t:{id}, KEYS[2] voters hash, KEYS[3] unsettled hash, KEYS[4] the
-- user's votes hash rv:{user} (stores/reader_votes.py); ARGV[1] user, ARGV[2] previous
-- direction, ARGV[3] the version the failed change was given, ARGV[4] the target's id.
-- Returns 1 if reverted, 0 otherwise; then the user's direction in Redis may not be on
-- the log, and the user is marked unsettled (their next vote is re-published).
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local user = ARGV[1]
if v ~= tonumber(ARGV[3]) then
  local held = tonumber(redis.call('HGET', KEYS[3], user) or '0')
  if tonumber(ARGV[3]) > held then
    redis.call('HSET', KEYS[3], user, ARGV[3])
  end
  return 0
end
local prev = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[2], user) or '0')
local up = tonumber(redis.call('HGET', KEYS[1], 'up') or '0')
local dn = tonumber(redis.call('HGET', KEYS[1], 'dn') or '0')
if cur == 1 then up = up - 1 elseif cur == -1 then dn = dn - 1 end
if prev == 1 then up = up + 1 elseif prev == -1 then dn = dn + 1 end
local target_id = ARGV[4]
if prev == 0 then
  redis.call('HDEL', KEYS[2], user)
  redis.call('HDEL', KEYS[4], target_id)
else
  redis.call('HSET', KEYS[2], user, prev)
  redis.call('HSET', KEYS[4], target_id, prev)
end
redis.call('HSET', KEYS[1], 'up', up, 'dn', dn)
return 1
