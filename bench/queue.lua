-- bench/queue.lua: eddy.queue's durable backends under load, for
-- bench/queue.sh. Prints "name value" lines.
--   eddy bench/queue.lua sqlite PATH N C SYNC   (SYNC: full | normal)
--   eddy bench/queue.lua redis URL N C
-- push: C tasks push N messages in all; popack: C tasks pop and ack them
-- all; latency: one task pushes, pops and acks one message at a time.
local eddy = require "eddy"
local ffi = require "ffi"
ffi.cdef [[
  struct eddy_bench_ts { long tv_sec; long tv_nsec; };
  int clock_gettime(int clk, struct eddy_bench_ts *ts);
]]
local ts = ffi.new("struct eddy_bench_ts")
-- CLOCK_MONOTONIC in seconds, ns precision: eddy.now() has ms steps.
local function clock()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local kind, target, n, c, sync = ...
n, c = tonumber(n), tonumber(c)

local opts = kind == "sqlite" and { path = target, synchronous = sync } or { url = target }
local b = assert(require("eddy.queue." .. kind).open("bench", opts))
local payload = ("x"):rep(64)

local function stats() return b.stats and b:stats() or { commits = 0, ops = 0 } end

local function run(fn)
  local tasks, left = {}, n
  local s0, t0 = stats(), eddy.now()
  for i = 1, c do
    tasks[i] = eddy.spawn(function()
      while left > 0 do
        left = left - 1
        fn()
      end
    end)
  end
  for i = 1, c do assert(tasks[i]:join()) end
  local s1 = stats()
  local dt = eddy.now() - t0
  return n / dt, (s1.ops - s0.ops) / math.max(1, s1.commits - s0.commits)
end

local rate, batch = run(function() assert(b:push(payload)) end)
print("push_rate", rate)
print("push_batch", batch)
rate, batch = run(function()
  local m = assert(b:pop(5))
  assert(b:ack(m.id))
end)
print("popack_rate", rate)
print("popack_batch", batch)

local lat = {}
for i = 1, 1000 do
  local t0 = clock()
  assert(b:push(payload))
  local m = assert(b:pop(5))
  assert(b:ack(m.id))
  lat[i] = clock() - t0
end
table.sort(lat)
print("lat_p50_ms", lat[500] * 1000)
print("lat_p99_ms", lat[990] * 1000)
b:close()
