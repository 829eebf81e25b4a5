-- The routing lease: one node at a time runs the router, and every write it
-- makes is checked against the epoch it was granted (fencing), so a leader
-- that stalled past its lease (a pause, a partition) cannot write after a
-- successor took over.
--   KEYS[1]  lease  the holder's node name, expiring
--   KEYS[2]  epoch  a counter, one up for each new holder; never reset
-- ARGV: 1 op ("acquire", "renew", "release"), 2 node, 3 epoch (renew,
--       release), 4 lease time (ms)
-- acquire: {1, epoch} when this node holds the lease now (newly, with a new
--          epoch, or still), {0, holder's epoch} when another holds it.
-- renew:   1 when this node still holds the lease under that epoch, else 0.
--          A lease that merely ran out (Redis was unreachable, or
--          restarted empty) while no other node took it (the epoch did
--          not move) is taken back.
-- release: 1 when it held it and let it go, else 0.
local lease, epoch = KEYS[1], KEYS[2]
local op, node = ARGV[1], ARGV[2]
local holder = redis.call('GET', lease)
local current = tonumber(redis.call('GET', epoch) or '0')
if op == 'acquire' then
  if holder == node then
    redis.call('PEXPIRE', lease, ARGV[4])
    return {1, current}
  end
  if holder then return {0, current} end
  current = redis.call('INCR', epoch)
  redis.call('SET', lease, node, 'PX', ARGV[4])
  return {1, current}
end
local mine = holder == node and current == tonumber(ARGV[3])
if op == 'renew' then
  if mine then redis.call('PEXPIRE', lease, ARGV[4]) return 1 end
  if not holder and current <= tonumber(ARGV[3]) then
    redis.call('SET', lease, node, 'PX', ARGV[4])
    if current < tonumber(ARGV[3]) then redis.call('SET', epoch, ARGV[3]) end
    return 1
  end
  return 0
end
if op == 'release' then
  if mine then redis.call('DEL', lease) return 1 end
  return 0
end
return redis.error_reply('unknown lease op')
