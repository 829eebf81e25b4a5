-- Offers one message toward direction ARGV[1].
-- ARGV: 1 direction, 2 MAC of the client's id, 3 weight, 4 ciphertext,
--       5 most entries, 6 most bytes, 7 most ids remembered, 8 ttl (ms)
-- Returns {0, seq} accepted, {1, seq} a retry of seq, {2, 0} backlog full.
local meta, stream, ids = KEYS[1], KEYS[2], KEYS[3]
local d = ARGV[1]
local seen = redis.call('ZSCORE', ids, ARGV[2])
if seen then return {1, tonumber(seen)} end
local n = redis.call('XLEN', stream)
local bytes = num(redis.call('HGET', meta, 'bytes:' .. d))
local weight = tonumber(ARGV[3])
if n >= tonumber(ARGV[5]) or (n > 0 and bytes + weight > tonumber(ARGV[6])) then
  return {2, 0}
end
local seq = redis.call('HINCRBY', meta, 'last:' .. d, 1)
redis.call('HINCRBY', meta, 'bytes:' .. d, weight)
redis.call('XADD', stream, string.format('%d-0', seq), 'w', weight, 'p', ARGV[4])
redis.call('ZADD', ids, seq, ARGV[2])
local extra = redis.call('ZCARD', ids) - tonumber(ARGV[7])
if extra > 0 then redis.call('ZREMRANGEBYRANK', ids, 0, extra - 1) end
keep(ARGV[8])
return {0, seq}
