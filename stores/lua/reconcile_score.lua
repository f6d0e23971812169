-- The votes dataflow's authoritative tally replaces the live score unless the API
-- has accepted a newer vote since (its version is higher than the tally's).
-- KEYS[1] target hash; ARGV[1] up, ARGV[2] down, ARGV[3] tally's max version,
-- ARGV[4] community id, ARGV[5] author id. Returns 1 if written.
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local tally_v = tonumber(ARGV[3])
if tally_v < v then
  return 0
end
redis.call('HSET', KEYS[1], 'up', ARGV[1], 'dn', ARGV[2], 'v', tally_v)
if redis.call('HEXISTS', KEYS[1], 'c') == 0 then
  redis.call('HSET', KEYS[1], 'c', ARGV[4], 'a', ARGV[5])
end
return 1
