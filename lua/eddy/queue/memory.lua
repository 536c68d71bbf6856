-- eddy.queue.memory: the default backend of eddy.queue, a queue in the
-- program's memory that its reactor threads and task-pool threads share
-- (bindings/queue.c, core/mqueue.c, core/hub.h). Several worker
-- processes do not share it: use the sqlite or redis backend for that.
-- Implements the backend interface that lua/eddy/queue.lua calls.
require "eddy"
local c = require "eddy.c.queue"
local api = require "eddy.c.task"

local now, min, setmetatable = api.now, math.min, setmetatable

local M = {}
local mt = { __index = {} }
local B = mt.__index

function M.open(name, opts)
  local q, err = c.open(name, opts)
  if not q then return nil, err end
  return setmetatable({ _q = q, _name = name }, mt)
end

-- A closed queue object answers nil, "closed" (the queue itself lives
-- on for the process's other users).
local CLOSED = setmetatable({}, { __index = function()
  return function() return nil, "closed" end
end })

local function check(self)
  if self._closed then return CLOSED end
  return self._q
end

-- Waits until look() answers, or the deadline (nil: none) passes. due is
-- how long until the queue itself may change state without a wake-up
-- (a delayed message, a visibility deadline).
local function wait_for(q, room, deadline, due)
  local left = deadline and deadline - now()
  if left and left <= 0 then return nil, "timeout" end
  local ms = left
  if due then ms = ms and min(ms, due) or due end
  local ok, err = q:wait(room, ms and ms + 0.001)
  if ok or err == "timeout" then return true end
  return nil, err
end

function B:push(payload, opts)
  local q = check(self)
  local delay = opts and opts.delay
  local timeout = opts and opts.timeout
  local deadline = timeout and timeout > 0 and now() + timeout
  while true do
    local ok, err = q:push(payload, delay)
    if ok or err ~= "full" or not deadline then return ok, err end
    if now() >= deadline then return nil, "full" end
    local waited, werr = wait_for(q, true, deadline, 0.1)
    if not waited then return nil, werr end
  end
end

local function pop(self, deadline)
  local q = check(self)
  while true do
    local id, payload, attempts = q:pop()
    if id then return { id = id, payload = payload, attempts = attempts } end
    if payload ~= "empty" then return nil, payload end
    local ok, err = wait_for(q, false, deadline, attempts)
    if not ok then return nil, err end
    if deadline and now() >= deadline then
      id, payload, attempts = q:pop()
      if id then return { id = id, payload = payload, attempts = attempts } end
      return nil, "timeout"
    end
  end
end

function B:pop(timeout)
  return pop(self, timeout and now() + timeout)
end

function B:pop_batch(n, timeout)
  local first, err = pop(self, timeout and now() + timeout)
  if not first then return nil, err end
  local batch = { first }
  local q = self._q
  while #batch < n do
    local id, payload, attempts = q:pop()
    if not id then break end
    batch[#batch + 1] = { id = id, payload = payload, attempts = attempts }
  end
  return batch
end

function B:ack(id) return check(self):ack(id) end

function B:nack(id, delay) return check(self):nack(id, delay) end

function B:length()
  local ready, in_flight, delayed = check(self):length()
  if not ready then return nil, in_flight end
  return ready + delayed, in_flight
end

-- stats() -> { ready, in_flight, delayed, bytes (of the payloads held) }
function B:stats()
  local ready, in_flight, delayed, bytes = check(self):length()
  if not ready then return nil, in_flight end
  return { ready = ready, in_flight = in_flight, delayed = delayed, bytes = bytes }
end

function B:close() self._closed = true end

return M
