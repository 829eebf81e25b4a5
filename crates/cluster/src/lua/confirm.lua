-- The receiver of direction ARGV[1] has everything up to ARGV[2].
-- ARGV: 1 direction, 2 up to, 3 ttl (ms)
-- Returns the new confirmed mark, or -1 when it did not move.
local meta, stream = KEYS[1], KEYS[2]
local up = clamp(meta, ARGV[1], ARGV[2])
local moved = confirm(meta, stream, ARGV[1], up)
if moved >= 0 then keep(ARGV[3]) end
return moved
