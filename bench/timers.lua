-- timers.lua: a million pending timers. Part 1 measures memory: N timers
-- sharing one callback, resident memory growth divided by N. Part 2 checks
-- order and lateness: N timers with random delays, each callback checking
-- that it fires after every timer due before it, and how late it is.
-- Usage: eddy bench/timers.lua [N] [spread seconds]
local eddy = require "eddy"
local ffi = require "ffi"
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } eddy_ts;
  int clock_gettime(int clk, eddy_ts *ts);
]]
local ts = ffi.new("eddy_ts")
local function clock() -- CLOCK_MONOTONIC, seconds
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local N = tonumber(arg[1]) or 1000000
local spread = tonumber(arg[2]) or 4

local function rss_kib()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

-- Part 1: memory per pending timer.
local noop = function() end
local keep = {}
for i = 1, N do keep[i] = false end -- room for the handles, made up front
collectgarbage("collect")
local rss0 = rss_kib()
local t0 = clock()
for i = 1, N do keep[i] = eddy.timer.after(3600, noop) end
local make_s = clock() - t0
collectgarbage("collect")
local per_timer = (rss_kib() - rss0) * 1024 / N
for i = 1, N do keep[i]:cancel() keep[i] = false end
keep = nil
collectgarbage("collect")

-- Part 2: order and lateness. The first timer is due once all are set.
-- (Setting these costs several times what part 1 did: a closure and three
-- clock readings each.)
local margin = math.ceil((8 * make_s + 1) * 1000) / 1000 -- whole ms, as eddy keeps them
math.randomseed(42)
local fired, max_late, sum_late, disorder, over_10ms = 0, 0, 0, 0, 0
local max_lo = -1
local done = eddy.channel(1)
for i = 1, N do
  local delay = margin + math.floor(math.random() * spread * 1000) / 1000
  local due = clock() + delay
  -- Order is checked on the runtime's own clock, read just before and just
  -- after the timer is set (a stall of the machine in between leaves the
  -- due uncertain within that span); lateness on the real clock.
  -- tests/c/timer_test.c checks the exact order.
  local due_lo, due_hi = eddy.now() + delay
  eddy.timer.after(delay, function()
    local late = clock() - due
    if due_hi < max_lo - 0.0011 then
      disorder = disorder + 1
    end
    if due_lo > max_lo then max_lo = due_lo end
    if late > max_late then max_late = late end
    if late > 0.010 then over_10ms = over_10ms + 1 end
    sum_late = sum_late + late
    fired = fired + 1
    if fired == N then done:send(true) end
  end)
  due_hi = eddy.now() + delay
end
done:recv()
print(("timers=%d bytes_per_pending_timer=%.0f timers_set_per_s=%.0f "
  .. "fired=%d out_of_order=%d max_late_ms=%.1f mean_late_ms=%.2f "
  .. "late_over_10ms=%d")
  :format(N, per_timer, N / make_s, fired, disorder, max_late * 1000,
    sum_late / N * 1000, over_10ms))
