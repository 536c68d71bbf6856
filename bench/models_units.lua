-- models_units.lua: the unit costs of eddy's model, the task, to set beside
-- a process and a thread (bench/models_units.c): creating and finishing one
-- (eddy.spawn, then join), a switch between two (ping-pong over unbuffered
-- channels), and the memory of one parked in ch:recv(). Prints a markdown
-- table row, then the details.
--
--   build/eddy bench/models_units.lua [n]     (n: 100000)
local eddy = require "eddy"
local ffi = require "ffi"

ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } models_timespec;
  int clock_gettime(int clock, models_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("models_timespec")

-- eddy.now is the loop's cached time, which stands still while a task
-- runs without waiting: these loops need the clock itself.
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = tonumber(f:read("*a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib
end

local N = tonumber(arg and arg[1]) or 100000

-- Creating and finishing: spawn a task, join it (the joiner waits, the task
-- runs and ends, the joiner resumes): the analogue of fork + waitpid.
local function spawn_join()
  local noop = function() end
  local t0 = now_us()
  for _ = 1, N do eddy.spawn(noop):join() end
  return (now_us() - t0) / N
end

-- Switching: the main task and another pass a value back and forth over
-- two unbuffered channels, each hop blocking one and waking the other.
local function channel_switch()
  local ping, pong = eddy.channel(0), eddy.channel(0)
  local echo = eddy.spawn(function()
    for _ = 1, N do pong:send(ping:recv()) end
  end)
  local t0 = now_us()
  for i = 1, N do
    ping:send(i)
    pong:recv()
  end
  local us = (now_us() - t0) / (2 * N)
  assert(echo:join())
  return us
end

-- The same with eddy.yield: two tasks taking turns, nothing passed.
local function yield_switch()
  local other = eddy.spawn(function() for _ = 1, N do eddy.yield() end end)
  local t0 = now_us()
  for _ = 1, N do eddy.yield() end
  local us = (now_us() - t0) / (2 * N)
  assert(other:join())
  return us
end

-- Memory: N tasks parked in recv on one channel, measured after a full
-- collection as the Lua heap (collectgarbage "count") and as the resident
-- set; then the channel closes and they all finish.
local function idle_tasks()
  local ch = eddy.channel(0)
  local park = function() ch:recv() end
  collectgarbage("collect")
  collectgarbage("collect")
  local heap0, rss0 = collectgarbage("count"), rss_kib()
  for _ = 1, N do eddy.spawn(park) end
  eddy.yield() -- they all run up to their recv
  collectgarbage("collect")
  collectgarbage("collect")
  local heap1, rss1 = collectgarbage("count"), rss_kib()
  assert(eddy.stats().tasks == N + 1, "tasks not parked")
  ch:close()
  eddy.yield()
  assert(eddy.stats().tasks == 1, "tasks left behind")
  return (heap1 - heap0) * 1024 / N, (rss1 - rss0) * 1024 / N
end

local heap, rss = idle_tasks()
local create = spawn_join()
local switch = channel_switch()
local yield = yield_switch()
print(("| eddy task (coroutine) | %.2f µs | %.2f µs (yield: %.2f µs) |" ..
  " %.0f bytes Lua heap, %.0f bytes RSS |"):format(create, switch, yield, heap, rss))
