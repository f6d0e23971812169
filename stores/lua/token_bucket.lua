-- Token buckets: take `cost` tokens from every bucket or from none, atomically.
-- Owned by stores/rate_limits.py, which prepends this chunk to the scripts that take
-- buckets in the same call as their own work (cast_vote.lua) and runs it alone for
-- every other request.
-- A bucket of `count` tokens refilled evenly over `window` seconds is kept in its GCRA
-- form: one string `rl:{limit}:{subject}`, the time (s) at which the bucket will be full
-- again; absent or past means full. With `per` = window / count seconds a token, it holds
-- count - (full_at - now) / per tokens, and taking `cost` tokens moves full_at to
-- max(full_at, now) + cost * per, which is allowed while that stays within `window` of
-- now. One MGET reads every bucket and one SET (with its expiry: the key lives until the
-- bucket is full) writes each, so a request's buckets cost few calls.
-- take_buckets(keys, argv, k, a, n[, now]): buckets keys[k .. k+n-1], each with the
-- triple argv[a + 3i .. a + 3i + 2] = count, window seconds, cost (a negative cost gives
-- tokens back, at most up to full); `now` in seconds, else read from TIME.
-- Returns {allowed 1|0, index (1-based) of the tightest bucket, remaining, reset s,
-- retry-after s}: the tightest is the one with the fewest tokens left when allowed, the
-- one that must wait longest when refused.
local function take_buckets(keys, argv, k, a, n, now)
  if n == 0 then
    return {1, 0, 0, 0, 0}
  end
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  end
  local names = {}
  for i = 1, n do names[i] = keys[k + i - 1] end
  local held = redis.call('MGET', unpack(names))
  local state = {}
  local allowed = 1
  for i = 1, n do
    local j = a + 3 * (i - 1)
    local count, window, cost = tonumber(argv[j]), tonumber(argv[j + 1]), tonumber(argv[j + 2])
    local per = window / count
    local full_at = tonumber(held[i] or '') or now
    if full_at < now then full_at = now end
    local after = full_at + cost * per
    if after < now then after = now end
    state[i] = {count, window, per, full_at, after}
    if cost > 0 and after - now > window + per * 1e-6 then allowed = 0 end
  end
  local best, best_remaining, best_wait = 0, math.huge, -1
  for i = 1, n do
    local s = state[i]
    local count, window, per, full_at, after = s[1], s[2], s[3], s[4], s[5]
    if allowed == 1 then
      local left = (window - (after - now)) / per
      redis.call('SET', names[i], string.format('%.6f', after),
        'PX', math.max(1, math.ceil((after - now) * 1000)))
      s[6] = left
      s[7] = after - now
      if left < best_remaining or (left == best_remaining and s[7] > best_wait) then
        best, best_remaining, best_wait = i, left, s[7]
      end
    elseif after - now > window + per * 1e-6 then
      local wait = after - now - window
      s[6] = count - (full_at - now) / per
      s[7] = full_at - now
      if wait > best_wait then
        best, best_remaining, best_wait = i, s[6], wait
      end
    end
  end
  local s = state[best]
  local retry = 0
  if allowed == 0 then retry = math.ceil(best_wait) end
  return {allowed, best, math.floor(s[6] + 1e-6), math.ceil(s[7] - 1e-6), retry}
end
