-- eddy.pubsub: topics that every subscriber in any reactor thread of the
-- process hears (bindings/pubsub.c, core/topic.c).
--
--   publish(topic, value) -> number of this process's subscribers reached
--   subscribe(topic[, {buffer = 1024}]) -> subscription
--   sub:recv([timeout]) -> value | nil, "timeout" / "closed" / "cancelled"
--   sub:dropped() -> messages dropped so far, messages waiting
--   sub:close()
--
-- A subscriber gets every message published after it subscribed, in
-- order. A slow one has a bounded buffer: when it is full the oldest
-- message is dropped and counted (dropped()), so memory stays bounded.
--
-- With several worker processes (eddy --workers N), a message also goes
-- to the other workers through eddy's mailbox relays (lua/eddy/mailbox.lua):
-- to each of their threads that has subscribed to some topic, which hands
-- it to its own subscribers. That leg never waits: a relay that is full
-- misses the message (counted in eddy.pubsub.relay_dropped), and a message
-- over 64 KiB encoded does not cross (raises). Across machines, use Redis
-- pub/sub through eddy.redis.
local eddy = require "eddy"
local c = require "eddy.c.pubsub"
local codec = require "eddy.c.codec"

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local encode, decode, now = codec.encode, codec.decode, eddy.now

local M = { _VERSION = "0.1.0", relay_dropped = 0 }

local THREAD = eddy.worker.thread()

local function workers() return eddy.worker.count() > 1 end

-- A message from another worker: to this thread's subscribers.
local function on_relayed(msg)
  if type(msg) == "table" and type(msg[1]) == "string" and type(msg[2]) == "string" then
    c.publish(msg[1], msg[2], THREAD)
  end
end

local S = {}
local smt = { __index = S }

function M.publish(topic, value)
  local bytes, err = encode(value)
  if not bytes then error("eddy.pubsub.publish: " .. tostring(err), 2) end
  local n = c.publish(topic, bytes)
  if workers() then
    local _, full = require("eddy.mailbox")._relay_all("pubsub", { topic, bytes }, true)
    M.relay_dropped = M.relay_dropped + full
  end
  return n
end

function M.subscribe(topic, opts)
  if type(topic) ~= "string" then error("eddy.pubsub.subscribe: topic must be a string", 2) end
  local sub = c.subscribe(topic, opts and opts.buffer, THREAD)
  if workers() then require("eddy.mailbox")._relay("pubsub", on_relayed) end
  return setmetatable({ topic = topic, _s = sub }, smt)
end

function S:recv(timeout)
  local s = self._s
  local deadline = timeout and now() + timeout
  while true do
    local bytes, err = s:next()
    if bytes then return decode(bytes) end
    if err ~= "empty" then return nil, err end
    local left = deadline and deadline - now()
    if left and left <= 0 then return nil, "timeout" end
    local ok, werr = s:wait(left)
    if not ok and werr ~= "timeout" then return nil, werr end
  end
end

function S:dropped() return self._s:dropped() end

function S:close() self._s:close() end

return M
