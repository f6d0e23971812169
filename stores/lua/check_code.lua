-- One-time code check (stores/codes.py). KEYS[1] = code hash {d digest, n tries left}.
-- ARGV[1] = digest offered. Returns 1 (match: the code is used up), 0 (wrong: one try
-- less, the code is gone after the last), -1 (no code: never sent, expired or used up).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('HGET', KEYS[1], 'd') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
local left = redis.call('HINCRBY', KEYS[1], 'n', -1)
if left <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
