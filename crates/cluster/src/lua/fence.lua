-- Shared by every script the routing leader runs: refuses the write when
-- the epoch it was granted is no longer current (another node took over).
-- KEYS[1] is always the epoch key, ARGV[1] the leader's epoch.
local function fenced()
  return tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1])
end
