-- bench/db/redis.lua: N SETs, then N GETs, by C tasks, each task with a
-- connection of its own and one command in flight (no pipelining), as
-- redis-benchmark -c C -n N -t set,get does. The connections are made
-- before the clock starts, as redis-benchmark's are. Prints one line per
-- command: "SET <requests/s>".
--
--   build/eddy bench/db/redis.lua HOST PORT [N [C]]

local eddy = require "eddy"
local redis = require "eddy.redis"

local host, port, n, c = ...
n, c = tonumber(n) or 100000, tonumber(c) or 100
local KEY, VALUE = "key:__rand_int__", "xxx" -- redis-benchmark's defaults

local conns = {}
for i = 1, c do
  conns[i] = assert(redis.connect({ host = host, port = tonumber(port) }))
end

local function phase(name, body)
  local wg = eddy.waitgroup()
  local t0 = eddy.now()
  for i = 1, c do
    -- Task i does its share of the n commands.
    local share = math.floor(n / c) + (i <= n % c and 1 or 0)
    wg:spawn(body, conns[i], share)
  end
  wg:wait()
  local secs = eddy.now() - t0
  print(("%s %.0f"):format(name, n / secs))
end

phase("SET", function(conn, k)
  for _ = 1, k do assert(conn:set(KEY, VALUE)) end
end)
phase("GET", function(conn, k)
  for _ = 1, k do assert(conn:get(KEY)) end
end)
for i = 1, c do conns[i]:close() end
