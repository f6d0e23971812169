-- Record one user's vote on a target and update the live score, atomically.
-- KEYS[1] target hash t:{id} (c community, a author, up, dn, v), written by the
--         content dataflow when the target is materialised; absent => unknown target
-- KEYS[2] voters hash uv:{id} (user -> direction)
-- KEYS[3] unsettled hash uvu:{id} (user -> version of a change of that user whose
--         event may not be on the log: its publish timed out or could not be undone)
-- KEYS[4] the shadow-banned authors of the target's community (stores/shadow.py)
-- KEYS[5] the community's standing versions (stores/standing_versions.py)
-- KEYS[6] the user's votes hash rv:{user} (target -> direction; stores/reader_votes.py)
-- KEYS[7..] the user's rate-limit buckets for this request (stores/rate_limits.py)
-- ARGV[1] user id, ARGV[2] direction (-1, 0, 1), ARGV[3] number of buckets, ARGV[4]
--         '1' when the voter may not see content of shadow-banned authors (not a
--         moderator): such a target is unknown to them, ARGV[5] the version of the
--         voter's standing the caller checked the vote against ('' never changed,
--         '*' not checked), ARGV[6] the target's id, ARGV[7..] the buckets' (count,
--         window, cost) triples
-- The script runs after stores/lua/token_bucket.lua (prepended when it is loaded): the
-- buckets are taken first, in this same call, and a refused request changes nothing.
-- Returns {status, previous, version, up, down, community, author, allowed, bucket,
-- remaining, reset, retry}; status 1 changed, 2 re-asserted (same direction, but the
-- user's last change is unsettled: it gets a new version and event so the log surely
-- holds it), 0 unchanged (idempotent repeat), -1 unknown target, -2 rate limited, -3
-- the voter's standing changed since the caller read it (nothing taken or changed: read
-- it again and retry); the last five are take_buckets' answer.
-- The version is max(previous version + 1, server time in microseconds): monotonic per
-- target even if Redis loses its data, so the dataflow can order a user's changes.
local target = KEYS[1]
local voters = KEYS[2]
local user = ARGV[1]
local target_id = ARGV[6]
local dir = tonumber(ARGV[2])
if ARGV[5] ~= '*' and (redis.call('HGET', KEYS[5], user) or '') ~= ARGV[5] then
  return {-3, 0, 0, 0, 0, '', '', 1, 0, 0, 0, 0}
end
local t = redis.call('TIME')
local limit = take_buckets(KEYS, ARGV, 7, 7, tonumber(ARGV[3] or '0'),
  tonumber(t[1]) + tonumber(t[2]) / 1000000)
if limit[1] == 0 then
  return {-2, 0, 0, 0, 0, '', '', limit[1], limit[2], limit[3], limit[4], limit[5]}
end
local meta = redis.call('HMGET', target, 'c', 'a', 'up', 'dn', 'v')
if not meta[1] or (ARGV[4] == '1' and meta[2] and meta[2] ~= user
    and redis.call('SISMEMBER', KEYS[4], meta[2]) == 1) then
  return {-1, 0, 0, 0, 0, '', '', limit[1], limit[2], limit[3], limit[4], limit[5]}
end
local up = tonumber(meta[3] or '0')
local dn = tonumber(meta[4] or '0')
local v = tonumber(meta[5] or '0')
local prev = tonumber(redis.call('HGET', voters, user) or '0')
local status = 1
if prev == dir then
  if redis.call('HEXISTS', KEYS[3], user) == 0 then
    return {0, prev, v, up, dn, meta[1], meta[2], limit[1], limit[2], limit[3], limit[4],
      limit[5]}
  end
  status = 2
end
if prev == 1 then up = up - 1 elseif prev == -1 then dn = dn - 1 end
if dir == 1 then up = up + 1 elseif dir == -1 then dn = dn + 1 end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now <= v then now = v + 1 end
if dir == 0 then
  redis.call('HDEL', voters, user)
  redis.call('HDEL', KEYS[6], target_id)
else
  redis.call('HSET', voters, user, dir)
  redis.call('HSET', KEYS[6], target_id, dir)
end
redis.call('HSET', target, 'up', up, 'dn', dn, 'v', now)
return {status, prev, now, up, dn, meta[1], meta[2], limit[1], limit[2], limit[3], limit[4],
  limit[5]}
