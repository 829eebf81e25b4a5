-- The receiver of direction ARGV[1] comes back having seen up to ARGV[2]:
-- confirms that much and returns what follows.
-- ARGV: 1 direction, 2 last seen, 3 ttl (ms)
-- Returns {recovered (0/1), last seq, seq1, ciphertext1, seq2, ...}.
local meta, stream = KEYS[1], KEYS[2]
local d = ARGV[1]
local seen, last = clamp(meta, d, ARGV[2])
confirm(meta, stream, d, seen)
local conf = num(redis.call('HGET', meta, 'conf:' .. d))
local reply = {0, last}
if seen >= conf then reply[1] = 1 end
for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
  local id = entry[1]
  reply[#reply + 1] = tonumber(string.sub(id, 1, string.find(id, '-', 1, true) - 1))
  reply[#reply + 1] = entry[2][4]
end
keep(ARGV[3])
return reply
