-- eddy.pool: bounded pools of connections (Redis, MySQL, TCP or anything
-- with an open and a close), for the tasks of one reactor thread.
--
-- A pool opens at most max_open connections; a task that finds none free
-- waits in line, up to a deadline, for one to be put back or for a slot to
-- open up. It keeps at most max_idle idle connections, closes those idle
-- longer than idle_timeout, checks an idle one before handing it out, and
-- closes one that comes back in a state that must not be reused.
--
-- Idle connections are looked at when the pool is used (get, put, stats):
-- a pool nobody touches keeps its idle connections until its next use or
-- close(), with no timer of its own, so that it never keeps the program's
-- loop running. (An eddy.tcp connection that has been read keeps reading,
-- and so keeps the loop running: a pool of them passes on_idle =
-- function(c) c:read_stop() end. eddy's Redis and MySQL clients see to it
-- themselves.)

local c = require "eddy.c.task"

local suspend, wake, now = c.suspend, c.wake, c.now
local waitq = require("eddy.sync")._waiters
local setmetatable, error, type, pcall, tostring, pairs =
  setmetatable, error, type, pcall, tostring, pairs
local table_remove = table.remove

local M = {}

local Pool = {}
Pool.__index = Pool

local DEFAULTS = {
  max_open = 10,
  idle_timeout = 60, -- seconds; 0 keeps idle connections for ever
  wait_timeout = 10, -- seconds a get waits for a connection by default
}

local function default_close(conn)
  conn:close()
end

-- A connection is usable when it says it is not closed; one without a
-- closed() method is taken as it is.
local function default_check(conn)
  local closed = conn.closed
  return closed == nil or not closed(conn)
end

local function check_number(opts, key, min)
  local v = opts[key]
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < min) then
    error(("bad pool option '%s': expected a number >= %d, got %s"):format(key, min, tostring(v)), 3)
  end
end

-- eddy.pool.new(opts) → pool. opts: open (function() → conn | nil, err;
-- required), close (function(conn); default conn:close()), check
-- (function(conn) → ok, run on an idle connection before it is handed
-- out; default: not conn:closed()), reusable (function(conn) → ok, run on
-- put; false closes it instead), on_idle (function(conn), run when it
-- goes idle in the pool), max_open (10), max_idle (max_open),
-- idle_timeout (60 s; 0 = none), wait_timeout (10 s), name.
function M.new(opts)
  if type(opts) ~= "table" or type(opts.open) ~= "function" then
    error("bad argument #1 to 'new' (options with an open function expected)", 2)
  end
  check_number(opts, "max_open", 1)
  check_number(opts, "max_idle", 0)
  check_number(opts, "idle_timeout", 0)
  check_number(opts, "wait_timeout", 0)
  local max_open = opts.max_open or DEFAULTS.max_open
  return setmetatable({
    name = opts.name or "pool",
    _open_fn = opts.open,
    _close_fn = opts.close or default_close,
    _check_fn = opts.check or default_check,
    _reusable_fn = opts.reusable,
    _on_idle = opts.on_idle,
    _max_open = max_open,
    _max_idle = opts.max_idle or max_open,
    _idle_timeout = opts.idle_timeout or DEFAULTS.idle_timeout,
    _wait_timeout = opts.wait_timeout or DEFAULTS.wait_timeout,
    _idle = {},      -- { conn = , since = } records, the newest last
    _in_use = {},    -- conn → true
    _waiters = {},   -- FIFO of { slot, gen } of waiting tasks
    _open = 0,       -- connections counted against max_open (opening too)
    _closed = false,
    _counts = { created = 0, closed = 0, timeouts = 0, open_errors = 0, check_failures = 0 },
  }, Pool)
end

-- Closes one connection for good; a failing close function is not the
-- caller's problem.
local function close_conn(p, conn)
  p._open = p._open - 1
  p._counts.closed = p._counts.closed + 1
  pcall(p._close_fn, conn)
end

local function expired(p, rec, t)
  return p._idle_timeout > 0 and t - rec.since >= p._idle_timeout
end

-- Closes the idle connections past their idle timeout; the oldest are at
-- the front.
local function reap(p)
  local idle, t = p._idle, now()
  while idle[1] and expired(p, idle[1], t) do
    close_conn(p, table_remove(idle, 1).conn)
  end
end

-- A slot came free (a connection closed): the first task still waiting
-- gets the right to open one in it.
local function pass_slot(p)
  local q = p._waiters
  while q[1] do
    local w = waitq.shift(q)
    if wake(w.slot, w.gen, "slot") then
      p._open = p._open + 1
      return
    end
  end
end

-- Hands conn to the first task still waiting; false if none.
local function pass_conn(p, conn)
  local q = p._waiters
  while q[1] do
    local w = waitq.shift(q)
    if wake(w.slot, w.gen, "conn", conn) then return true end
  end
  return false
end

-- What open_in_slot answers for open's answer: the connection, or nil and
-- every value open gave after its nil (a driver's message, errno...).
local function opened(p, ok, conn, err, ...)
  if ok and conn then
    p._counts.created = p._counts.created + 1
    p._in_use[conn] = true
    return conn
  end
  p._open = p._open - 1
  p._counts.open_errors = p._counts.open_errors + 1
  pass_slot(p)
  if not ok then return nil, tostring(conn) end
  return nil, err or "open failed", ...
end

-- Opens a connection in a slot already counted in _open.
local function open_in_slot(p)
  return opened(p, pcall(p._open_fn))
end

-- The newest idle connection that passes its check, or nil.
local function take_idle(p)
  local idle = p._idle
  while idle[1] do
    local rec = table_remove(idle)
    if expired(p, rec, now()) then
      close_conn(p, rec.conn)
    else
      p._in_use[rec.conn] = true -- the check may wait: it is out of the pool
      local ok, good = pcall(p._check_fn, rec.conn)
      if ok and good then return rec.conn end
      p._in_use[rec.conn] = nil
      p._counts.check_failures = p._counts.check_failures + 1
      close_conn(p, rec.conn)
    end
  end
  return nil
end

-- pool:get([timeout]) → conn, or nil and "timeout" (none came free in
-- time), "closed" (the pool is closed), "cancelled", or open's error
-- with every value open gave after it.
function Pool:get(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    error("bad timeout: expected seconds >= 0, got " .. tostring(timeout), 2)
  end
  timeout = timeout or self._wait_timeout
  local deadline = now() + timeout
  while true do
    if self._closed then return nil, "closed" end
    reap(self)
    local conn = take_idle(self)
    if conn then return conn end
    if self._open < self._max_open then
      self._open = self._open + 1
      return open_in_slot(self)
    end
    local left = deadline - now()
    if left <= 0 then
      self._counts.timeouts = self._counts.timeouts + 1
      return nil, "timeout"
    end
    local w = waitq.new()
    waitq.push(self._waiters, w)
    local how, got = suspend(left, "pool " .. self.name)
    if how == "conn" then return got end
    if how == "slot" then return open_in_slot(self) end
    waitq.remove(self._waiters, w)
    if how == "closed" then return nil, "closed" end
    if got == "timeout" then self._counts.timeouts = self._counts.timeouts + 1 end
    return nil, got
  end
end

local function release(p, conn)
  if not p._in_use[conn] then
    error("connection does not belong to pool '" .. p.name .. "' (or was returned already)", 3)
  end
  p._in_use[conn] = nil
end

-- pool:put(conn): gives conn back. It goes to the first waiting task, or
-- to the idle list; it is closed instead when the pool is closed, when
-- reusable(conn) says no, or when max_idle are idle already.
function Pool:put(conn)
  release(self, conn)
  local reusable = not self._closed and default_check(conn)
  if reusable and self._reusable_fn then
    local ok, yes = pcall(self._reusable_fn, conn)
    reusable = ok and yes
  end
  if not reusable then
    close_conn(self, conn)
    return pass_slot(self)
  end
  if pass_conn(self, conn) then
    self._in_use[conn] = true
    return
  end
  reap(self)
  if #self._idle >= self._max_idle then
    close_conn(self, conn)
    return
  end
  if self._on_idle then pcall(self._on_idle, conn) end
  self._idle[#self._idle + 1] = { conn = conn, since = now() }
end

-- pool:discard(conn): closes conn instead of giving it back (it broke, or
-- its state is unknown), freeing its slot.
function Pool:discard(conn)
  release(self, conn)
  close_conn(self, conn)
  if not self._closed then pass_slot(self) end
end

-- pool:with(fn, ...): get a connection, call fn(conn, ...), give it back
-- (discarded if fn raised, and the error raised again). Returns fn's
-- results, or nil, err when no connection could be had.
function Pool:with(fn, ...)
  local conn, err = self:get()
  if not conn then return nil, err end
  local function finish(ok, ...)
    if ok then
      self:put(conn)
      return ...
    end
    self:discard(conn)
    error((...), 0)
  end
  return finish(pcall(fn, conn, ...))
end

-- pool:stats() → { open, idle, in_use, waiting, max_open, created, closed,
-- timeouts, open_errors, check_failures }.
function Pool:stats()
  reap(self)
  local in_use = 0
  for _ in pairs(self._in_use) do in_use = in_use + 1 end
  local s = {
    open = self._open, idle = #self._idle, in_use = in_use,
    waiting = #self._waiters, max_open = self._max_open,
  }
  for k, v in pairs(self._counts) do s[k] = v end
  return s
end

-- pool:close(): closes the idle connections now and the others as they
-- are put back; waiting tasks get nil, "closed". Later gets answer the same.
function Pool:close()
  if self._closed then return end
  self._closed = true
  local idle = self._idle
  self._idle = {}
  for i = 1, #idle do close_conn(self, idle[i].conn) end
  local q = self._waiters
  self._waiters = {}
  for i = 1, #q do wake(q[i].slot, q[i].gen, "closed") end
end

function Pool:closed() return self._closed end

-- The pools made by shared(), by key; one table per Lua state, so per
-- reactor thread.
local shared = {}

-- eddy.pool.shared(key, opts) → the pool for key in this reactor thread,
-- made with new(opts) on first use (later opts are ignored). A closed one
-- is replaced.
function M.shared(key, opts)
  local p = shared[key]
  if p == nil or p._closed then
    p = M.new(opts)
    shared[key] = p
  end
  return p
end

return M
