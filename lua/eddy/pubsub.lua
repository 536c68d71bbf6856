-- eddy.pubsub: topics that every subscriber in any reactor thread of the
-- process hears (bindings/pubsub.c, core/topic.c).
--
--   publish(topic, value) -> number of subscribers reached
--   subscribe(topic[, {buffer = 1024}]) -> subscription
--   sub:recv([timeout]) -> value | nil, "timeout" / "closed" / "cancelled"
--   sub:dropped() -> messages dropped so far, messages waiting
--   sub:close()
--
-- A subscriber gets every message published after it subscribed, in
-- order. A slow one has a bounded buffer: when it is full the oldest
-- message is dropped and counted (dropped()), so memory stays bounded.
-- Worker processes do not share topics: eddy.mailbox, or Redis pub/sub
-- (eddy.redis), reach other processes.
local eddy = require "eddy"
local c = require "eddy.c.pubsub"
local codec = require "eddy.c.codec"

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local encode, decode, now = codec.encode, codec.decode, eddy.now

local M = { _VERSION = "0.1.0" }

local S = {}
local smt = { __index = S }

function M.publish(topic, value)
  local bytes, err = encode(value)
  if not bytes then error("eddy.pubsub.publish: " .. tostring(err), 2) end
  return c.publish(topic, bytes)
end

function M.subscribe(topic, opts)
  if type(topic) ~= "string" then error("eddy.pubsub.subscribe: topic must be a string", 2) end
  local sub = c.subscribe(topic, opts and opts.buffer)
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
