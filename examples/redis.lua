-- redis.lua: eddy's Redis client. Ten tasks share a pool of connections
-- to count visits, a pipeline sends several commands in one round trip,
-- and a subscriber task receives what another publishes.
--
--   build/eddy examples/redis.lua [redis://127.0.0.1:6379/0]

local eddy = require "eddy"
local redis = require "eddy.redis"

local url = ... or "redis://127.0.0.1:6379/0"
local opts = { url = url, pool = { max_open = 4 } }

-- Ten tasks, four connections: each task takes one, uses it, gives it back.
local wg = eddy.waitgroup()
for _ = 1, 10 do
  wg:spawn(function()
    local conn = assert(redis.connect(opts))
    conn:incr("example:visits")
    conn:release()
  end)
end
wg:wait()

local conn = assert(redis.connect(opts))
local replies = conn:pipeline(function(p)
  p:get("example:visits")
  p:set("example:greeting", "hello")
  p:del("example:visits", "example:greeting")
end)
print("visits " .. replies[1] .. ", set " .. replies[2] .. ", deleted " .. replies[3])

-- A subscription needs a connection of its own (not pooled).
local sub = assert(assert(redis.connect(url)):subscribe("example:news"))
local listener = eddy.spawn(function()
  local kind, channel, payload = sub:recv(5)
  return kind .. " on " .. channel .. ": " .. payload
end)
conn:publish("example:news", "eddy speaks RESP")
print(select(2, listener:join()))
sub:close()
conn:release()
