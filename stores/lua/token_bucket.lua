-- Token buckets: take `cost` tokens from every bucket or from none, atomically.
-- Owned by stores/rate_limits.py, which prepends this chunk to the scripts that take
-- buckets in the same call as their own work (cast_vote.lua) and runs it alone
-- (take_buckets.lua) for every other request.
-- A bucket `rl:{limit}:{subject}` is a hash {tk tokens, ts last refill (s)}; it holds
-- at most `count` tokens and refills count/window per second. It expires when it
-- would be full again, so idle buckets cost nothing.
-- take_buckets(keys, argv, k, a, n): buckets keys[k .. k+n-1], each with the triple
-- argv[a + 3i .. a + 3i + 2] = count, window seconds, cost (a negative cost gives
-- tokens back, at most up to count).
-- Returns {allowed 1|0, index (1-based) of the tightest bucket, remaining, reset s,
-- retry-after s}: the tightest is the one with the fewest tokens left when allowed, the
-- one that must wait longest when refused.
local function take_buckets(keys, argv, k, a, n)
  if n == 0 then
    return {1, 0, 0, 0, 0}
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local state = {}
  local allowed = 1
  for i = 0, n - 1 do
    local count = tonumber(argv[a + 3 * i])
    local window = tonumber(argv[a + 3 * i + 1])
    local cost = tonumber(argv[a + 3 * i + 2])
    local rate = count / window
    local held = redis.call('HMGET', keys[k + i], 'tk', 'ts')
    local tokens = count
    if held[1] then
      local elapsed = now - tonumber(held[2])
      if elapsed < 0 then elapsed = 0 end
      tokens = math.min(count, tonumber(held[1]) + elapsed * rate)
    end
    state[i + 1] = {count, window, cost, rate, tokens}
    if cost > 0 and tokens < cost then allowed = 0 end
  end
  local best, best_remaining, best_wait = 0, math.huge, -1
  for i = 1, n do
    local s = state[i]
    local count, cost, rate, tokens = s[1], s[3], s[4], s[5]
    if allowed == 1 then
      local left = math.min(count, tokens - cost)
      redis.call('HSET', keys[k + i - 1], 'tk', left, 'ts', now)
      local full = (count - left) / rate
      redis.call('PEXPIRE', keys[k + i - 1], math.max(1, math.ceil(full * 1000)))
      s[6] = left
      s[7] = full
      if left < best_remaining or (left == best_remaining and full > best_wait) then
        best, best_remaining, best_wait = i, left, full
      end
    elseif tokens < cost then
      local wait = (cost - tokens) / rate
      s[6] = tokens
      s[7] = (count - tokens) / rate
      if wait > best_wait then
        best, best_remaining, best_wait = i, tokens, wait
      end
    end
  end
  local s = state[best]
  local retry = 0
  if allowed == 0 then retry = math.ceil(best_wait) end
  return {allowed, best, math.floor(s[6]), math.ceil(s[7]), retry}
end
