-- Listing views for post ids: ARGV[1] user id ('' for anonymous), ARGV[2..] post ids.
-- Returns one {view json, up, down, comment count, my vote} per id (view false if missing).
local user = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local view = redis.call('GET', 'pv:' .. id)
  local t = redis.call('HMGET', 't:' .. id, 'up', 'dn', 'cc')
  local mine = false
  if user ~= '' then mine = redis.call('HGET', 'uv:' .. id, user) end
  out[#out + 1] = {view, t[1], t[2], t[3], mine}
end
return out
