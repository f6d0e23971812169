-- One page of a ranking sorted set, highest first, with each post's listing view.
-- KEYS[1] the set; KEYS[2] (optional) the community's pins key: pinned posts lead the
-- first page and are left out of the ranked entries.
-- ARGV[1] limit, ARGV[2] user id ('' anonymous), ARGV[3], ARGV[4] (optional) keyset
-- cursor: rank and post id of the last item seen. If that item still holds that rank
-- the page continues right after it; otherwise it continues below that rank.
-- Returns {ids, ranks (strings; '' for pinned), views, set size}.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local user = ARGV[2]
local ids, ranks, views = {}, {}, {}
local pinned = {}

local function add(id, rank)
  local t = redis.call('HMGET', 't:' .. id, 'up', 'dn', 'cc')
  local mine = false
  if user ~= '' then mine = redis.call('HGET', 'uv:' .. id, user) end
  ids[#ids + 1] = id
  ranks[#ranks + 1] = rank
  views[#views + 1] = {redis.call('GET', 'pv:' .. id), t[1], t[2], t[3], mine}
end

if KEYS[2] and not ARGV[3] then
  local raw = redis.call('GET', KEYS[2])
  if raw then
    for _, id in ipairs(cjson.decode(raw)) do
      pinned[id] = true
      add(id, '')
    end
  end
end

local want = limit - #ids
local extra = 0
for _ in pairs(pinned) do extra = extra + 1 end
local entries
if ARGV[3] then
  local held = redis.call('ZSCORE', key, ARGV[4])
  if held and tonumber(held) == tonumber(ARGV[3]) then
    local rank = redis.call('ZREVRANK', key, ARGV[4])
    entries = redis.call('ZRANGE', key, rank + 1, rank + want, 'REV', 'WITHSCORES')
  else
    entries = redis.call('ZRANGE', key, '(' .. ARGV[3], '-inf', 'BYSCORE', 'REV',
      'LIMIT', 0, want, 'WITHSCORES')
  end
else
  entries = redis.call('ZRANGE', key, 0, want + extra - 1, 'REV', 'WITHSCORES')
end
for i = 1, #entries, 2 do
  if #ids >= limit then break end
  if not pinned[entries[i]] then add(entries[i], entries[i + 1]) end
end
return {ids, ranks, views, redis.call('ZCARD', key)}
