-- Channels, select, waitgroups and semaphores between the tasks of one
-- reactor thread. They are built on two primitives of the scheduler:
-- suspend(timeout, what) parks the current task, and wake(slot, gen, ...)
-- ends that one wait with values. A wake aimed at a wait that has already
-- ended (timed out, cancelled, or woken by another channel in a select)
-- returns false, and the waker tries the next waiter.

local c = require "eddy.c.task"

local self_, suspend, wake = c.self, c.suspend, c.wake
local setmetatable, getmetatable, error, type, tostring =
  setmetatable, getmetatable, error, type, tostring
local math_floor = math.floor

local M = {}

-- A FIFO of waiters: { slot, gen, value, ... } records in an array.
local function q_push(q, w)
  q[#q + 1] = w
end

local function q_shift(q)
  local w = q[1]
  if w ~= nil then table.remove(q, 1) end
  return w
end

local function q_remove(q, w)
  for i = 1, #q do
    if q[i] == w then
      table.remove(q, i)
      return
    end
  end
end

local function waiter()
  local slot, gen = self_()
  return { slot = slot, gen = gen }
end

-- Timeouts are checked here, so that a bad one is blamed on the caller.
local function check_timeout(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    error("bad timeout: expected seconds >= 0, got " .. tostring(timeout), 3)
  end
end

local function check_count(n, what, min)
  if type(n) ~= "number" or n ~= math_floor(n) or n < min then
    error("bad " .. what .. ": expected an integer >= " .. min .. ", got " .. tostring(n), 3)
  end
end

-- =======================================================================
-- Channels

local Channel = {}
Channel.__index = Channel

-- eddy.channel([capacity]): capacity 0 (the default) hands each value over
-- only when a receiver takes it.
function M.channel(capacity)
  capacity = capacity or 0
  check_count(capacity, "capacity", 0)
  return setmetatable({
    _cap = capacity, _buf = {}, _head = 1, _n = 0, _closed = false,
    _recvq = {}, _sendq = {},
  }, Channel)
end

local function buf_put(ch, v)
  ch._buf[(ch._head + ch._n - 1) % ch._cap + 1] = v
  ch._n = ch._n + 1
end

local function buf_take(ch)
  local i = ch._head
  local v = ch._buf[i]
  ch._buf[i] = nil
  ch._head = i % ch._cap + 1
  ch._n = ch._n - 1
  return v
end

-- Wakes the first receiver whose wait is still on with v; false if none.
local function hand_to_receiver(ch, v)
  while true do
    local r = q_shift(ch._recvq)
    if r == nil then return false end
    if wake(r.slot, r.gen, true, v, ch) then return true end
  end
end

-- Takes the value of the first sender still waiting, waking it.
local function take_from_sender(ch)
  while true do
    local s = q_shift(ch._sendq)
    if s == nil then return false end
    if wake(s.slot, s.gen, true) then return true, s.value end
  end
end

-- ch:send(v[, timeout]): true, or nil and "closed", "full" (timeout 0 and
-- no room), "timeout" or "cancelled".
function Channel:send(v, timeout)
  check_timeout(timeout)
  if self._closed then return nil, "closed" end
  if hand_to_receiver(self, v) then return true end
  if self._n < self._cap then
    buf_put(self, v)
    return true
  end
  if timeout == 0 then return nil, "full" end
  local w = waiter()
  w.value = v
  q_push(self._sendq, w)
  local ok, err = suspend(timeout, "channel send")
  if ok then return true end
  q_remove(self._sendq, w)
  return nil, err
end

-- ch:recv([timeout]): the value, or nil and "closed" (closed and drained),
-- "timeout" or "cancelled". A nil that was sent comes back as nil, nil.
function Channel:recv(timeout)
  check_timeout(timeout)
  if self._n > 0 then
    local v = buf_take(self)
    -- Room in the buffer: the first waiting sender may put its value.
    local ok, sv = take_from_sender(self)
    if ok then buf_put(self, sv) end
    return v
  end
  local ok, sv = take_from_sender(self)
  if ok then return sv end
  if self._closed then return nil, "closed" end
  if timeout == 0 then return nil, "timeout" end
  local w = waiter()
  q_push(self._recvq, w)
  local got, v = suspend(timeout, "channel recv")
  if got then return v end
  q_remove(self._recvq, w)
  return nil, v
end

-- ch:close(): no more sends; queued values can still be received, then
-- recv answers nil, "closed". Waiting senders get nil, "closed".
function Channel:close()
  if self._closed then return false end
  self._closed = true
  local q = self._recvq
  self._recvq = {}
  for i = 1, #q do wake(q[i].slot, q[i].gen, nil, "closed", self) end
  q = self._sendq
  self._sendq = {}
  for i = 1, #q do wake(q[i].slot, q[i].gen, nil, "closed") end
  return true
end

function Channel:closed() return self._closed end
function Channel:length() return self._n end
function Channel:capacity() return self._cap end

-- eddy.select(channels[, timeout]): waits for the first of several channels
-- to have a value. Returns ch, value; ch, nil, "closed" when ch is closed and
-- drained; nil, "timeout" or nil, "cancelled".
function M.select(channels, timeout)
  if type(channels) ~= "table" then
    error("bad argument #1 to 'select' (table of channels expected)", 2)
  end
  check_timeout(timeout)
  local n = #channels
  for i = 1, n do
    local ch = channels[i]
    if getmetatable(ch) ~= Channel then
      error("bad argument #1 to 'select' (item " .. i .. " is not a channel)", 2)
    end
    local v, err = ch:recv(0)
    if err ~= "timeout" then return ch, v, err end
  end
  if timeout == 0 then return nil, "timeout" end
  local w = waiter()
  for i = 1, n do q_push(channels[i]._recvq, w) end
  local got, v, from = suspend(timeout, "select")
  for i = 1, n do q_remove(channels[i]._recvq, w) end
  if got then return from, v end
  if from ~= nil then return from, nil, v end -- closed
  return nil, v
end

-- =======================================================================
-- Waitgroups

local WaitGroup = {}
WaitGroup.__index = WaitGroup

function M.waitgroup()
  return setmetatable({ _count = 0, _waiters = {} }, WaitGroup)
end

function WaitGroup:add(n)
  n = n or 1
  if type(n) ~= "number" or n ~= math_floor(n) then
    error("bad argument #1 to 'add' (integer expected)", 2)
  end
  local count = self._count + n
  if count < 0 then error("waitgroup counter below zero", 2) end
  self._count = count
  if count == 0 then
    local q = self._waiters
    self._waiters = {}
    for i = 1, #q do wake(q[i].slot, q[i].gen, true) end
  end
end

function WaitGroup:done()
  return self:add(-1)
end

function WaitGroup:count() return self._count end

-- wg:wait([timeout]): true once the counter is zero, or nil, err.
function WaitGroup:wait(timeout)
  check_timeout(timeout)
  if self._count == 0 then return true end
  if timeout == 0 then return nil, "timeout" end
  local w = waiter()
  q_push(self._waiters, w)
  local ok, err = suspend(timeout, "waitgroup")
  if ok then return true end
  q_remove(self._waiters, w)
  return nil, err
end

-- wg:spawn(fn, ...): eddy.spawn, counted in the group until the task ends,
-- however it ends (returns, fails, or is cancelled before it starts): a
-- second task joins it and counts it done.
function WaitGroup:spawn(fn, ...)
  self:add(1)
  local t = c.spawn(fn, ...)
  local wg = self
  c.spawn(function()
    t:join()
    wg:done()
  end)
  return t
end

-- =======================================================================
-- Semaphores

local Semaphore = {}
Semaphore.__index = Semaphore

function M.semaphore(permits)
  permits = permits or 1
  check_count(permits, "permits", 0)
  return setmetatable({ _permits = permits, _waiters = {} }, Semaphore)
end

-- sem:acquire([timeout]): true, or nil, "timeout" / "cancelled". Waiters are
-- served in order.
function Semaphore:acquire(timeout)
  check_timeout(timeout)
  if self._permits > 0 and #self._waiters == 0 then
    self._permits = self._permits - 1
    return true
  end
  if timeout == 0 then return nil, "timeout" end
  local w = waiter()
  q_push(self._waiters, w)
  local ok, err = suspend(timeout, "semaphore")
  if ok then return true end
  q_remove(self._waiters, w)
  return nil, err
end

-- sem:release(): hands the permit to the first waiter, if any.
function Semaphore:release()
  while true do
    local w = q_shift(self._waiters)
    if w == nil then break end
    if wake(w.slot, w.gen, true) then return end
  end
  self._permits = self._permits + 1
end

function Semaphore:available() return self._permits end

-- sem:with(fn, ...): acquire, call fn, release even if fn raises; returns
-- fn's results, or nil, err when the permit could not be had.
function Semaphore:with(fn, ...)
  local ok, err = self:acquire()
  if not ok then return nil, err end
  local function finish(ok2, ...)
    self:release()
    if not ok2 then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end

-- The FIFO of waiters, for eddy's other Lua-level waits (pools, queue
-- backends): one list discipline for all of them.
M._waiters = { new = waiter, push = q_push, shift = q_shift, remove = q_remove }

return M
