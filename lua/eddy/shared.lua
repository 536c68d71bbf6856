-- eddy.shared: memory shared by every reactor thread and worker process.
--
-- dict(name, {size = "10m", evict = true}) makes a dictionary (or finds
-- it: every thread and worker may run the same declaration); dict(name)
-- finds one made before. Methods: get, set(k, v, ttl), add, replace,
-- incr(k, n, init), delete, ttl, expire, keys, flush_all, lpush, rpush,
-- lpop, rpop, llen, stats. See bindings/shared.c.
--
-- atomic(name[, init]) is a 64-bit integer with get, set, add(n) and
-- cas(old, new). lock(name) is a lock across threads and processes whose
-- acquire([timeout]) suspends the task, never the loop: it polls, from
-- 1 ms up to 10 ms apart, so a handover takes a few milliseconds. A lock
-- whose holder's process died is taken over.
require "eddy" -- sets up the runtime when this module is loaded first
local c = require "eddy.c.shared"
local task = require "eddy.c.task"
local threads = require "eddy.c.threads"

local setmetatable, error, pcall, min, floor = setmetatable, error, pcall, math.min, math.floor

local M = { dict = c.dict, atomic = c.atomic, pid = c.pid, alive = c.alive }

local PID_UNIT, THREAD_UNIT = 2 ^ 24, 2 ^ 14

local Lock = {}
Lock.__index = Lock

local serial = 0

-- A token naming the holder: its process (so that a dead holder can be
-- told), thread, and a serial number.
local function new_token()
  serial = (serial + 1) % THREAD_UNIT
  return c.pid() * PID_UNIT + (threads.info()) * THREAD_UNIT + serial
end

function M.lock(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'lock' (string expected, got " .. type(name) .. ")", 2)
  end
  return setmetatable({ _cell = c.atomic("lock:" .. name, 0), _name = name, _tokens = {} }, Lock)
end

-- A lock is held by a task: tasks may share one lock object.
local function holder()
  local t = task.current()
  return t and t:id() or 0
end

-- lock:acquire([timeout]) -> true | nil, "timeout" | nil, "cancelled"
function Lock:acquire(timeout)
  local me = holder()
  if self._tokens[me] then
    error("eddy.shared.lock: '" .. self._name .. "' is held already by this task", 2)
  end
  local token = new_token()
  local deadline = timeout and task.now() + timeout
  local delay = 0.001
  while true do
    local ok, holder = self._cell:cas(0, token)
    if ok then
      self._tokens[me] = token
      return true
    end
    if not c.alive(floor(holder / PID_UNIT)) then
      self._cell:cas(holder, 0) -- its holder died with it: free it
    else
      local left = deadline and deadline - task.now()
      if left and left <= 0 then return nil, "timeout" end
      local _, err = task.sleep(left and min(delay, left) or delay)
      if err then return nil, err end
      delay = min(delay * 2, 0.01)
    end
  end
end

-- lock:release() -> true | nil, "not held" (it was taken over meanwhile)
function Lock:release()
  local me = holder()
  local token = self._tokens[me]
  if not token then
    error("eddy.shared.lock: '" .. self._name .. "' is not held by this task", 2)
  end
  self._tokens[me] = nil
  if self._cell:cas(token, 0) then return true end
  return nil, "not held"
end

-- lock:held() -> whether this task holds it
function Lock:held()
  return self._tokens[holder()] ~= nil
end

local function finish(self, ok, ...)
  self:release()
  if not ok then error((...), 0) end
  return true, ...
end

-- lock:with(fn[, timeout]) -> true, fn's results, the lock held meanwhile;
-- nil, err when it cannot be had; fn's error is raised after the release.
function Lock:with(fn, timeout)
  local ok, err = self:acquire(timeout)
  if not ok then return nil, err end
  return finish(self, pcall(fn))
end

return M
