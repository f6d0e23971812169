-- Mark or clear a user's unsettled vote on a target.
-- KEYS[1] unsettled hash uvu:{id}; ARGV[1] user, ARGV[2] version, ARGV[3] 'mark' or
-- 'delivered'. 'mark': the change with this version may not be on the log (its
-- publish timed out). 'delivered': a change with this version is on the log, so an
-- unsettled change of the same user up to this version no longer matters.
local user = ARGV[1]
local version = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[1], user) or '0')
if ARGV[3] == 'mark' then
  if version > held then
    redis.call('HSET', KEYS[1], user, version)
  end
elseif held > 0 and held <= version then
  redis.call('HDEL', KEYS[1], user)
end
return 1
