-- Shared by every conversation script (each script is this file followed by
-- its own body). One direction of one session lives in three keys, all under
-- the session's hash tag:
--   KEYS[1]  meta    hash: last:D (highest seq), conf:D (highest confirmed),
--                    bytes:D (weight still unconfirmed), for direction D
--   KEYS[2]  stream  the unconfirmed messages, id "<seq>-0", fields
--                    w (weight) and p (ciphertext)
--   KEYS[3]  ids     sorted set: MAC of a client message id -> its seq
-- The rules are those of haven-core's Conversation; the differential test
-- runs both on the same random operations.

local function num(v)
  if v then return tonumber(v) end
  return 0
end

-- Drops what the receiver confirmed, up to `up` (already clamped to last),
-- and returns the new mark, or -1 when it did not move.
local function confirm(meta, stream, d, up)
  local conf = num(redis.call('HGET', meta, 'conf:' .. d))
  if up <= conf then return -1 end
  local gone = redis.call('XRANGE', stream, '-', string.format('%d-0', up))
  local weight = 0
  for _, entry in ipairs(gone) do
    weight = weight + tonumber(entry[2][2])
  end
  if #gone > 0 then
    redis.call('XTRIM', stream, 'MINID', string.format('%d-0', up + 1))
  end
  redis.call('HSET', meta, 'conf:' .. d, up)
  redis.call('HINCRBY', meta, 'bytes:' .. d, -weight)
  return up
end

local function keep(ttl)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Clamps a client's claim to what exists.
local function clamp(meta, d, claim)
  local last = num(redis.call('HGET', meta, 'last:' .. d))
  local up = tonumber(claim)
  if up > last then up = last end
  return up, last
end
