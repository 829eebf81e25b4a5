-- The routing leader's step, all or nothing: what changed in the router's
-- state, the effects for the nodes, and the last input it applied.
--   KEYS[1] epoch (fence.lua), KEYS[2] state hash, KEYS[3] effects stream
-- ARGV: 1 epoch, 2 last input applied ("" for none), 3 effects kept,
--       4 n fields to set, then field and value pairs, then n fields to
--       delete and the fields, then n effects and the effects.
-- Returns the id of the last effect added, or "" when none.
if fenced() then return redis.error_reply('FENCED') end
local state, effects = KEYS[2], KEYS[3]
local i = 4
local n = tonumber(ARGV[i])
for j = 1, n do
  redis.call('HSET', state, ARGV[i + 2 * j - 1], ARGV[i + 2 * j])
end
i = i + 2 * n + 1
n = tonumber(ARGV[i])
for j = 1, n do
  redis.call('HDEL', state, ARGV[i + j])
end
i = i + n + 1
n = tonumber(ARGV[i])
local last = ''
for j = 1, n do
  last = redis.call('XADD', effects, 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[i + j])
end
if ARGV[2] ~= '' then
  redis.call('HSET', state, 'applied', ARGV[2])
end
return last
