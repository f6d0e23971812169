#!lua name=agora_listings
-- Listing reads as Redis functions: one round trip builds a page's JSON.
-- Keys: rank:{community}:{sort} sorted sets, pv:{post} listing view JSON,
-- t:{post} hash (up, dn, cc), uv:{post} hash (user -> direction), pins:{community}.

-- Whether a post is kept out of this reader's page: deleted or removed (`h` in
-- t:{post}), or by an author shadow-banned in its community (set sb:{community}),
-- unless the reader is that author or (ctx.mod) a moderator of the community.
local function banned_of(ctx, community)
  local banned = ctx.banned[community]
  if banned == nil then
    local members = redis.call('SMEMBERS', 'sb:' .. community)
    banned = false
    if #members > 0 then
      banned = {list = members, set = {}}
      for _, m in ipairs(members) do banned.set[m] = true end
    end
    ctx.banned[community] = banned
  end
  return banned
end

local function hidden(meta, ctx)
  if meta[6] then return true end
  local community, author = meta[4], meta[5]
  if not community or not author or ctx.mod or author == ctx.user then return false end
  local banned = banned_of(ctx, community)
  return banned and banned.set[author] == true
end

-- The comment count this reader sees: shadow-banned authors' comments (ca:{post})
-- left out, but the reader's own, and all of them for moderators.
local function comment_count(id, meta, ctx)
  local count = tonumber(meta[3]) or 0
  if not meta[4] or ctx.mod then return count end
  local banned = banned_of(ctx, meta[4])
  if not banned then return count end
  for _, m in ipairs(banned.list) do
    if m ~= ctx.user then
      count = count - (tonumber(redis.call('HGET', 'ca:' .. id, m)) or 0)
    end
  end
  return count
end

-- One listing item as JSON text (nil when hidden from this reader). The stored view
-- is a JSON object; the counts are spliced in before its closing brace (string work,
-- no decode/encode per item).
local function item(id, ctx, extra)
  local counts = redis.call('HMGET', 't:' .. id, 'up', 'dn', 'cc', 'c', 'a', 'h')
  if hidden(counts, ctx) then return nil, false end
  local user = ctx.user
  local raw = redis.call('GET', 'pv:' .. id)
  local head
  if raw then
    head = string.sub(raw, 1, -2)
  else
    head = '{"post_id":"' .. id .. '","missing":true'  -- not cached: the caller reads the shard
  end
  local up = tonumber(counts[1]) or 0
  local down = tonumber(counts[2]) or 0
  local parts = {head, ',"upvotes":', up, ',"downvotes":', down, ',"score":', up - down,
    ',"comment_count":', comment_count(id, counts, ctx)}
  if user ~= '' and ctx.votes ~= false then
    parts[#parts + 1] = ',"my_vote":'
    parts[#parts + 1] = tonumber(redis.call('HGET', 'uv:' .. id, user)) or 0
  end
  if extra then parts[#parts + 1] = extra end
  parts[#parts + 1] = '}'
  return table.concat(parts), raw == false
end

local function encode(items)
  return '[' .. table.concat(items, ',') .. ']'
end

-- Entries after a keyset cursor (rank, id): right after the item if it still holds
-- that rank, else strictly below the rank.
local function entries_after(key, count, rank, id)
  if count <= 0 then return {} end
  if not rank then
    return redis.call('ZRANGE', key, 0, count - 1, 'REV', 'WITHSCORES')
  end
  local held = redis.call('ZSCORE', key, id)
  if held and tonumber(held) == tonumber(rank) then
    local at = redis.call('ZREVRANK', key, id)
    return redis.call('ZRANGE', key, at + 1, at + count, 'REV', 'WITHSCORES')
  end
  return redis.call('ZRANGE', key, '(' .. rank, '-inf', 'BYSCORE', 'REV',
    'LIMIT', 0, count, 'WITHSCORES')
end

-- Fills `items` up to `limit` from the set after the cursor, skipping `skip` and
-- what is hidden from the reader (reading further down the set for each one).
-- Returns last rank, last id (of the last item listed), missing count, hidden count.
local function fill(key, items, limit, ctx, rank, id, skip)
  local last_rank, last_id, missing, dropped = '', '', 0, 0
  local at_rank, at_id = rank, id
  while #items < limit do
    local want = limit - #items + 1
    local entries = entries_after(key, want, at_rank, at_id)
    for i = 1, #entries, 2 do
      if #items >= limit then break end
      local entry = entries[i]
      at_rank, at_id = entries[i + 1], entry
      if not skip[entry] then
        local view, absent = item(entry, ctx, nil)
        if view then
          if absent then missing = missing + 1 end
          items[#items + 1] = view
          last_rank, last_id = entries[i + 1], entry
        else
          dropped = dropped + 1
        end
      end
    end
    if #entries < 2 * want then break end  -- the end of the set
  end
  return last_rank, last_id, missing, dropped
end

-- KEYS: set [, pins]; ARGV: limit, user, moderator ('1' or ''), [cursor rank, cursor id]
-- Returns {items json, last rank, last id, missing count, set size, item count,
-- hidden count}.
local function rank_page(keys, args)
  local limit = tonumber(args[1])
  local ctx = {user = args[2], mod = args[3] == '1', banned = {}}
  local items, skip, missing, dropped = {}, {}, 0, 0
  if keys[2] and not args[4] then
    local raw = redis.call('GET', keys[2])
    if raw then
      for _, id in ipairs(cjson.decode(raw)) do
        skip[id] = true
        local view, absent = item(id, ctx, ',"pinned":true')
        if view then
          if absent then missing = missing + 1 end
          items[#items + 1] = view
        else
          dropped = dropped + 1
        end
      end
    end
  end
  local last_rank, last_id, more, hidden_more = fill(keys[1], items, limit, ctx, args[4], args[5],
    skip)
  return {encode(items), last_rank, last_id, missing + more, redis.call('ZCARD', keys[1]),
    #items, dropped + hidden_more}
end

-- KEYS: snapshot, then the community sets (first page only).
-- ARGV: limit, user, snapshot size (0: only read an existing snapshot, from its start or
-- after the cursor), ttl seconds [, cursor rank, cursor id ('' for none) [, '0' to leave
-- out the reader's my_vote: the API adds it per request to a page it keeps]]
-- The first page freezes the union of the sets (a k-way merge by rank) into the
-- snapshot; later pages read the frozen order. Returns like rank_page; set size -1
-- when the snapshot has expired.
local function feed_page(keys, args)
  local limit = tonumber(args[1])
  local user = args[2]
  local snapshot = keys[1]
  local rank, id = args[5], args[6]
  if rank == '' then rank, id = nil, nil end
  if not rank and tonumber(args[3]) > 0 then
    if #keys > 1 then
      redis.call('ZUNIONSTORE', snapshot, #keys - 1, unpack(keys, 2))
      redis.call('ZREMRANGEBYRANK', snapshot, 0, -tonumber(args[3]) - 1)
    end
    redis.call('ZADD', snapshot, '-inf', '')  -- marks an empty snapshot as existing
    redis.call('EXPIRE', snapshot, tonumber(args[4]))
  elseif redis.call('EXISTS', snapshot) == 0 then
    return {'[]', '', '', 0, -1, 0, 0}
  end
  local ctx = {user = user, mod = false, banned = {}, votes = args[7] ~= '0'}
  local items = {}
  local last_rank, last_id, missing, dropped = fill(snapshot, items, limit, ctx, rank, id,
    {[''] = true})
  return {encode(items), last_rank, last_id, missing, redis.call('ZCARD', snapshot) - 1,
    #items, dropped}
end

-- ARGV: user, post ids... Returns the user's direction on each (0 when none). The API
-- now asks through reader_votes; this stays for processes of the previous release
-- while a rolling upgrade replaces them.
local function my_votes(keys, args)
  local out = {}
  for i = 2, #args do
    out[#out + 1] = tonumber(redis.call('HGET', 'uv:' .. args[i], args[1])) or 0
  end
  return out
end

-- Several readers' votes in one call: the API joins the lookups of concurrent
-- requests (stores/coalesce.py). ARGV: a user id and that reader's post ids joined by
-- commas (one argument: the client's cost is per argument), then the next reader's;
-- returns every direction (1, -1, 0 for none) in that order. reader_votes falls back on
-- it; the previous release's processes call it directly.
local function my_votes_joined(keys, args)
  local out = {}
  for i = 1, #args, 2 do
    local user = args[i]
    for id in string.gmatch(args[i + 1], '[^,]+') do
      out[#out + 1] = tonumber(redis.call('HGET', 'uv:' .. id, user)) or 0
    end
  end
  return out
end

-- Several readers' votes in one call, from each reader's index (stores/reader_votes.py):
-- one HMGET per reader. KEYS[1] the index's completeness marker, then each reader's
-- index hash; ARGV: like my_votes_joined (a user id, that reader's post ids joined by
-- commas, then the next reader's). Until the index is complete the voters hashes are
-- read instead. Returns every direction (1, -1, 0 for none) in that order.
local function reader_votes(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then
    return my_votes_joined(keys, args)
  end
  local out = {}
  for i = 1, #args, 2 do
    local ids = {}
    for id in string.gmatch(args[i + 1], '[^,]+') do ids[#ids + 1] = id end
    if #ids > 0 then
      local held = redis.call('HMGET', keys[(i + 1) / 2 + 1], unpack(ids))
      for j = 1, #ids do out[#out + 1] = tonumber(held[j]) or 0 end
    end
  end
  return out
end

-- The ranking dataflow's write of one post into its sets, trimming a set only when
-- the post joined it (an update of a member cannot grow the set).
-- KEYS: the sets; ARGV[1] post id, ARGV[2] entries kept per set, ARGV[3..] one score
-- per set.
local function rank_write(keys, args)
  local id, limit = args[1], tonumber(args[2])
  for i, key in ipairs(keys) do
    if redis.call('ZADD', key, args[i + 2], id) == 1 then
      redis.call('ZREMRANGEBYRANK', key, 0, -limit - 1)
    end
  end
  return #keys
end

redis.register_function('rank_write', rank_write)
redis.register_function{function_name = 'my_votes', callback = my_votes, flags = {'no-writes'}}
redis.register_function{
  function_name = 'my_votes_joined', callback = my_votes_joined, flags = {'no-writes'}
}
redis.register_function{
  function_name = 'reader_votes', callback = reader_votes, flags = {'no-writes'}
}
redis.register_function{function_name = 'rank_page', callback = rank_page, flags = {'no-writes'}}
redis.register_function('feed_page', feed_page)
