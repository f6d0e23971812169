-- Bring the per-reader vote index (rv:{user}, stores/reader_votes.py) in line with the
-- per-target voters hashes (uv:{target}), one batch per call: atomic against vote casts,
-- so a cast is never overwritten by an older copy.
-- ARGV[1] 'copy': KEYS are voters hashes, ARGV[2] the index key prefix, ARGV[3..] each
--         key's target id; every (user, direction) is written into the user's index.
-- ARGV[1] 'prune': KEYS are index hashes, ARGV[2] the voters key prefix, ARGV[3..] each
--         key's user id; an indexed vote the voters hash lacks (or holds otherwise) is
--         dropped (or corrected).
-- Returns how many index entries it wrote or dropped.
local changed = 0
local prefix = ARGV[2]
for i, key in ipairs(KEYS) do
  local id = ARGV[i + 2]
  local pairs_ = redis.call('HGETALL', key)
  for j = 1, #pairs_, 2 do
    local field, value = pairs_[j], pairs_[j + 1]
    if ARGV[1] == 'copy' then
      local index = prefix .. field
      if redis.call('HGET', index, id) ~= value then
        redis.call('HSET', index, id, value)
        changed = changed + 1
      end
    else
      local held = redis.call('HGET', prefix .. field, id)
      if not held then
        redis.call('HDEL', key, field)
        changed = changed + 1
      elseif held ~= value then
        redis.call('HSET', key, field, held)
        changed = changed + 1
      end
    end
  end
end
return changed
